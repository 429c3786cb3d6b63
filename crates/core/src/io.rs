//! The process's one async runtime, for network connectors.
//!
//! Pipeline nodes are synchronous threads; a network client (NATS today, MQTT, Kafka and the
//! web server next) runs its connection on this runtime and a node waits on it with
//! [`tokio::runtime::Runtime::block_on`] for at most the time it may wait anyway (a source's
//! read wait, a sink's flush). Nothing is buffered between the two beyond what the node asked
//! for, so back-pressure reaches the network client.

use std::sync::OnceLock;

/// The shared runtime: two worker threads named `weir-io`, created on first use.
///
/// # Panics
/// If the operating system refuses to start its threads.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("weir-io")
            .enable_all()
            .build()
            .expect("the I/O runtime's threads start")
    })
}
