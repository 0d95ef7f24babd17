# Narrows the pointer arguments of the generated wasmexport functions from
# uintptr to uint32 (see build.sh); run as perl -0pi narrow-exports.pl FILE.
s#^(func wasm_export_\w+)\(([^)]*)\)(.*?)\{\n#
    my ($head, $params, $rest) = ($1, $2, $3);
    my @wide = $params =~ /(arg\d+) uintptr/g;
    $params =~ s/(arg\d+) uintptr/${1}p uint32/g;
    "$head($params)$rest" . "{\n" . join("", map { "\t$_ := uintptr(${_}p)\n\t_ = $_\n" } @wide)
#gme
