//! What the examples print, the same on every target, for the tests that run them.

/// kv_ro's listing and reading of its store `examples/kv_ro/t` (crunched, or over a tar
/// archive of the same files).
pub const KV_RO_OUTPUT: &str = "\
INF [kv_ro] store has secret
INF [kv_ro] store has subdir/
INF [kv_ro] secret (7 bytes, sha256 aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f):
INF [kv_ro] foobar
INF [kv_ro] subdir/hello.txt (40 bytes, sha256 252874e9638df218c92d49b0a53330e94f8b3ba1394bf559cf638671b70f30ae):
INF [kv_ro] Hello from a subdirectory of the store.
";
