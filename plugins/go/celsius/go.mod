module celsius

go 1.25

require github.com/valyala/fastjson v1.6.3

// Debian's golang-github-valyala-fastjson-dev (scripts/setup.sh installs
// it): the build downloads nothing.
replace github.com/valyala/fastjson => /usr/share/gocode/src/github.com/valyala/fastjson
