//! A valid component for another world: Weir must refuse it at load.

wit_bindgen::generate!({ path: "wit", world: "greeter" });

struct Greeter;

impl Guest for Greeter {
    fn hello() -> String {
        "hello".to_string()
    }
}

export!(Greeter);
