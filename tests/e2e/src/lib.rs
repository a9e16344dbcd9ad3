//! Lanyard's end-to-end tests live in `tests/`: each starts the real `.wasm`
//! components in the Spin-compatible test host (`spin-test-host`) and talks
//! to them as browsers, apps and operators would.
