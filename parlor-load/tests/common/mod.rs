//! What the load tester's tests share: a real Parlor server to drive.

use std::{future::pending, net::SocketAddr, sync::mpsc, thread};

/// Starts a Parlor server on a free port, in memory, on a thread of its own.
pub fn start_server() -> SocketAddr {
    let (addr_tx, addr_rx) = mpsc::channel();
    thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let mut config = parlor::config::Config::defaults();
            config.server.bind = "127.0.0.1:0".to_string();
            config.store.path = parlor::store::IN_MEMORY.to_string();
            let server = parlor::start(config).expect("the server starts");
            addr_tx.send(server.addr()).expect("the test waits");
            let _ = server.run_until(pending()).await;
        });
    });
    addr_rx.recv().expect("the server's address")
}
