//! The browser tests read the test server's URL at compile time (`option_env!`), so they must
//! be rebuilt whenever it changes; so do the conformance runner's settings.
fn main() {
    for var in [
        "ANYWS_TEST_SERVER",
        "ANYWS_CONFORMANCE_SEEDS",
        "ANYWS_CONFORMANCE_RECORD",
        "ANYWS_CONFORMANCE_SLOW_MS",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
}
