//! Parlor's integration tests: one binary, a module per feature. Each test
//! starts a real server on port 0 and talks to it with a real WebSocket
//! client.

mod support;

mod admin;
mod binary;
mod bots;
mod cluster;
mod deploy;
mod faults;
mod games;
mod heartbeat;
mod http;
mod limits;
mod recovery;
mod redis;
mod restart;
mod resume;
mod room_order;
mod rooms;
mod session;
mod store;
mod transport;
