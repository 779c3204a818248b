//! The source of truth in random sequences (issue: hardening, property
//! tests): up to five members join, leave, broadcast and publish state in
//! one room, in a seeded random order, and every newcomer's state is asked
//! of the member PROTOCOL.md's order puts first: the most recently active
//! (a `broadcast` or `state` sent to the room; joining is not activity),
//! else the earliest joiner.

use std::time::Duration;

use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::{json, Value};

use crate::support::{Client, TestServer};

/// Frames a step may cause arrive within this of each other.
const QUIET: Duration = Duration::from_millis(60);

/// PROTOCOL.md's order of a room's members, as the test keeps it.
#[derive(Default)]
struct Order {
    /// Members that sent something, the most recent first.
    active: Vec<usize>,
    /// Members that never did, earliest joiner first.
    quiet: Vec<usize>,
}

impl Order {
    fn first(&self) -> Option<usize> {
        self.active.first().or(self.quiet.first()).copied()
    }

    fn joined(&mut self, member: usize) {
        self.quiet.push(member);
    }

    fn left(&mut self, member: usize) {
        self.active.retain(|m| *m != member);
        self.quiet.retain(|m| *m != member);
    }

    fn acted(&mut self, member: usize) {
        self.left(member);
        self.active.insert(0, member);
    }

    fn contains(&self, member: usize) -> bool {
        self.active.contains(&member) || self.quiet.contains(&member)
    }
}

#[tokio::test]
async fn a_newcomers_state_is_asked_of_the_member_the_order_puts_first() {
    let server = TestServer::start();
    let mut rng = StdRng::seed_from_u64(0x5eed_0017);
    for round in 0..2 {
        let room = format!("order-{round}");
        let mut members: Vec<(Client, String)> = Vec::new();
        for _ in 0..5 {
            let (client, welcome) = server.connect().await;
            members.push((client, welcome["session"].as_str().unwrap().to_string()));
        }
        let mut order = Order::default();
        for step in 0..20 {
            let who = rng.gen_range(0..members.len());
            let inside = order.contains(who);
            match (inside, rng.gen_range(0..3)) {
                (false, _) => {
                    let expected = order.first();
                    members[who]
                        .0
                        .send(json!({"type":"join_room","room":room}))
                        .await;
                    if let Some(asked) = expected {
                        // Only the first in the order is asked.
                        for (n, (client, _)) in members.iter_mut().enumerate() {
                            if n == who || !order.contains(n) {
                                continue;
                            }
                            let frames = client.drain(QUIET).await;
                            let request = frames.iter().find(|f| f["type"] == "state_request");
                            assert_eq!(
                                request.is_some(),
                                n == asked,
                                "round {round} step {step}: member {n} (asked: {asked}): {frames:?}"
                            );
                            if let Some(request) = request {
                                let answer = json!({"type":"state","room":room,"data":step,"for":request["for"]});
                                client.send(answer).await;
                            }
                        }
                        // Answering is activity.
                        order.acted(asked);
                    }
                    let frames = members[who].0.drain(QUIET).await;
                    let state = frames.iter().find(|f| f["type"] == "room_state");
                    let from = state.map(|state| state["from"].clone());
                    let expected_from =
                        expected.map_or(Value::Null, |asked| json!(members[asked].1));
                    assert_eq!(
                        from,
                        Some(expected_from),
                        "round {round} step {step}: {frames:?}"
                    );
                    order.joined(who);
                }
                (true, 0) => {
                    members[who]
                        .0
                        .send(json!({"type":"leave_room","room":room}))
                        .await;
                    order.left(who);
                }
                (true, 1) => {
                    let hello = json!({"type":"broadcast","room":room,"data":step});
                    members[who].0.send(hello).await;
                    order.acted(who);
                }
                (true, _) => {
                    let state = json!({"type":"state","room":room,"data":{"step":step}});
                    members[who].0.send(state).await;
                    order.acted(who);
                }
            }
            // Everything the step caused is read before the next one.
            for (client, _) in &mut members {
                let frames: Vec<Value> = client.drain(QUIET).await;
                assert!(
                    frames
                        .iter()
                        .all(|f| f["type"] != "state_request" && f["type"] != "error"),
                    "round {round} step {step}: {frames:?}"
                );
            }
        }
    }
}
