//! A JetStream stream of a test's own on the NATS server at 127.0.0.1:4222.

use std::sync::atomic::{AtomicU32, Ordering};

use async_nats::jetstream::{self, consumer::pull, stream};
use futures_util::StreamExt;

/// Where the machine's NATS server listens.
pub const URL: &str = "nats://127.0.0.1:4222";

/// A stream named after the test and the process, deleted when dropped. It captures
/// `subject` and everything below it.
pub struct TestStream {
    /// The JetStream context it was made with.
    pub js: jetstream::Context,
    /// The stream's name.
    pub name: String,
    /// The subject it captures.
    pub subject: String,
}

fn rt() -> &'static tokio::runtime::Runtime {
    weir_core::io::runtime()
}

impl TestStream {
    /// Makes the stream (replacing one of the same name left by a crashed run).
    ///
    /// # Panics
    /// If the server is not reachable.
    pub fn new(what: &str) -> TestStream {
        static N: AtomicU32 = AtomicU32::new(0);
        let (id, n) = (std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let name = format!("WEIRTEST_{}_{id}_{n}", what.to_uppercase());
        let subject = format!("weirtest.{id}.{n}.{what}");
        let js = rt().block_on(async {
            let client = async_nats::connect(URL)
                .await
                .expect("the NATS server on 127.0.0.1:4222 (see README: services)");
            let js = jetstream::new(client);
            let _ = js.delete_stream(&name).await;
            js.create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![format!("{subject}.>"), subject.clone()],
                ..Default::default()
            })
            .await
            .expect("creating a test stream");
            js
        });
        TestStream { js, name, subject }
    }

    /// Publishes each payload to `subject` and waits for the stream to have them.
    pub fn publish(&self, payloads: impl IntoIterator<Item = String>) {
        rt().block_on(async {
            let mut acks = Vec::new();
            for p in payloads {
                acks.push(
                    self.js
                        .publish(self.subject.clone(), p.into())
                        .await
                        .unwrap(),
                );
            }
            for a in acks {
                a.await.unwrap();
            }
        });
    }

    /// How many messages the stream holds.
    pub fn messages(&self) -> u64 {
        rt().block_on(async {
            let mut s = self.js.get_stream(&self.name).await.unwrap();
            s.info().await.unwrap().state.messages
        })
    }

    /// Every payload in the stream, in order.
    pub fn contents(&self) -> Vec<String> {
        let total = self.messages() as usize;
        rt().block_on(async {
            let stream = self.js.get_stream(&self.name).await.unwrap();
            let c = stream
                .create_consumer(pull::Config::default())
                .await
                .unwrap();
            let mut batch = c
                .batch()
                .max_messages(total.max(1))
                .messages()
                .await
                .unwrap();
            let mut out = Vec::new();
            while out.len() < total {
                let m = batch.next().await.unwrap().unwrap();
                out.push(String::from_utf8(m.payload.to_vec()).unwrap());
            }
            out
        })
    }

    /// The stream sequence a consumer has acknowledged up to.
    pub fn ack_floor(&self, consumer: &str) -> u64 {
        rt().block_on(async {
            let stream = self.js.get_stream(&self.name).await.unwrap();
            let info = stream.consumer_info(consumer).await.unwrap();
            info.ack_floor.stream_sequence
        })
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        let _ = rt().block_on(self.js.delete_stream(&self.name));
    }
}
