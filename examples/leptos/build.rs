//! The browser tests read the test server's URL at compile time (`option_env!`), so they must
//! be rebuilt whenever it changes.
fn main() {
    println!("cargo:rerun-if-env-changed=ANYWS_TEST_SERVER");
}
