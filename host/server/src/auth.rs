//! Bearer-token auth. Every call that changes something needs
//! `Authorization: Bearer <token>`; reads are open when the server listens
//! on loopback only, and need the token too otherwise. The token is made at
//! first start (`DATA_DIR/token`, mode 0600) or read from `--token-file`.

use std::path::{Path, PathBuf};

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::error::ApiError;

/// The server's token (kept as its digest) and whether reads need it.
#[derive(Debug, Clone)]
pub struct Auth {
    digest: [u8; 32],
    /// Whether reads (GET, HEAD) need the token too.
    pub reads_need_token: bool,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Auth {
    /// Auth with `token`.
    pub fn new(token: &str, reads_need_token: bool) -> Auth {
        Auth { digest: digest(token), reads_need_token }
    }

    /// Whether `token` is the server's (in constant time).
    pub fn accepts(&self, token: &str) -> bool {
        digest(token).ct_eq(&self.digest).into()
    }
}

/// Reads the token from `file`, or makes one at `default` (mode 0600) if
/// there is none. Returns it and where it is.
pub fn load_or_create(file: Option<&Path>, default: &Path) -> std::io::Result<(String, PathBuf)> {
    let path = file.unwrap_or(default).to_path_buf();
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok((text.trim().to_string(), path)),
        Ok(_) => return Err(std::io::Error::other(format!("the token file {} is empty", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && file.is_none() => {}
        Err(e) => {
            return Err(std::io::Error::new(e.kind(), format!("cannot read the token file {}: {e}", path.display())));
        }
    }
    let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&path)?;
    std::io::Write::write_all(&mut f, format!("{token}\n").as_bytes())?;
    f.sync_all()?;
    Ok((token, path))
}

/// The middleware: refuses a call that needs the token without it (401,
/// nothing done).
pub async fn require_token(State(auth): State<std::sync::Arc<Auth>>, request: Request, next: Next) -> Response {
    let read = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if read && !auth.reads_need_token {
        return next.run(request).await;
    }
    let given = request.headers().get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or_default().to_string());
    let refusal = match given.as_deref().map(|v| v.strip_prefix("Bearer ")) {
        None => "this call needs `Authorization: Bearer <token>` (the token is in the server's data dir, `token`)",
        Some(None) => "the Authorization header must be `Bearer <token>`",
        Some(Some(token)) if auth.accepts(token.trim()) => return next.run(request).await,
        Some(Some(_)) => "the token is wrong: use the one in the server's data dir (`token`) or --token-file",
    };
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", refusal).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_made_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let default = dir.path().join("token");
        let (token, path) = load_or_create(None, &default).unwrap();
        assert_eq!(path, default);
        assert_eq!(token.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(load_or_create(None, &default).unwrap().0, token);
        let auth = Auth::new(&token, false);
        assert!(auth.accepts(&token));
        assert!(!auth.accepts("wrong"));
        let missing = dir.path().join("missing");
        let err = load_or_create(Some(&missing), &default).unwrap_err();
        assert!(err.to_string().starts_with(&format!("cannot read the token file {}", missing.display())), "{err}");
    }
}
