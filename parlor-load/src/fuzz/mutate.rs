//! Requests that are almost right: every request PROTOCOL.md names, with
//! fields replaced, dropped, added or retyped, and the text then cut,
//! doubled or sprinkled with characters. What comes out is always valid
//! UTF-8 (a text frame that is not is a case of its own) and well under the
//! frame limit.

use rand::{rngs::StdRng, seq::SliceRandom, Rng};
use serde_json::{json, Map, Value};

/// Longest string a random value holds, in characters: a request stays far
/// below the default 64 KiB frame limit.
const LONG_STRING: usize = 2_000;

/// How deep a random value nests.
const VALUE_DEPTH: u32 = 3;

/// One request of every type, well formed.
fn templates() -> Vec<Value> {
    vec![
        json!({"type":"echo","data":"hello","id":1}),
        json!({"type":"set_name","name":"Ada"}),
        json!({"type":"find_game","game":"connect4"}),
        json!({"type":"cancel_find","game":"tictactoe"}),
        json!({"type":"create_game","game":"match3"}),
        json!({"type":"play_bot","game":"tictactoe","level":"easy","first":"bot"}),
        json!({"type":"join_game","join_key":"k_0123456789"}),
        json!({"type":"watch_game","watch_key":"w_0123456789"}),
        json!({"type":"move","game_id":"g_0123456789","column":3}),
        json!({"type":"move","game_id":"g_0123456789","cell":4}),
        json!({"type":"move","game_id":"g_0123456789","from":[0,0],"to":[0,1]}),
        json!({"type":"resign","game_id":"g_0123456789"}),
        json!({"type":"join_room","room":"fuzz","kind":"chat","role":"member"}),
        json!({"type":"join_room","room":"fuzz-canvas","kind":"canvas","zombies":3}),
        json!({"type":"join_room","room":"fuzz-stage","kind":"stage","role":"screen"}),
        json!({"type":"leave_room","room":"fuzz"}),
        json!({"type":"broadcast","room":"fuzz","data":{"text":"hi"}}),
        json!({"type":"direct","room":"fuzz","to":"s_0123456789","data":"psst"}),
        json!({"type":"state","room":"fuzz","data":{"n":1},"action":"move_word","for":"s_0123"}),
        json!({"type":"pos","room":"fuzz-canvas","x":500,"y":500}),
    ]
}

/// A request of a random type, mutated one to four times, as text of at
/// most `max_text` bytes (cut there, so that it never meets the frame
/// limit, which is a case of its own).
pub(crate) fn mutated_request(rng: &mut StdRng, max_text: usize) -> String {
    let mut request = templates()
        .choose(rng)
        .cloned()
        .unwrap_or_else(|| json!({}));
    for _ in 0..rng.gen_range(1..=4) {
        mutate_value(&mut request, rng);
    }
    let mut text = request.to_string();
    if rng.gen_bool(0.3) {
        text = mutate_text(&text, rng);
    }
    if text.len() > max_text {
        let mut end = max_text;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// One change to a request's JSON.
fn mutate_value(request: &mut Value, rng: &mut StdRng) {
    let Value::Object(fields) = request else {
        // Already not an object: sometimes make it one again.
        if rng.gen_bool(0.5) {
            *request = json!({"type": random_value(rng, 1)});
        }
        return;
    };
    let keys: Vec<String> = fields.keys().cloned().collect();
    match rng.gen_range(0..7) {
        0 | 1 => {
            if let Some(key) = keys.choose(rng) {
                fields.insert(key.clone(), random_value(rng, VALUE_DEPTH));
            }
        }
        2 => {
            if let Some(key) = keys.choose(rng) {
                fields.remove(key);
            }
        }
        3 => {
            fields.insert(random_string(rng), random_value(rng, VALUE_DEPTH));
        }
        4 => {
            let other = templates()
                .choose(rng)
                .and_then(|t| t["type"].as_str().map(str::to_string))
                .unwrap_or_default();
            fields.insert("type".to_string(), Value::String(other));
        }
        5 => {
            fields.insert("id".to_string(), random_value(rng, 1));
        }
        _ => *request = random_value(rng, VALUE_DEPTH),
    }
}

/// Any JSON value, nesting at most `depth` deep.
fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    let kinds = if depth == 0 { 4 } else { 6 };
    match rng.gen_range(0..kinds) {
        0 => Value::Null,
        1 => Value::Bool(rng.gen()),
        2 => random_number(rng),
        3 => Value::String(random_string(rng)),
        4 => Value::Array(
            (0..rng.gen_range(0..5))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.gen_range(0..5))
                .map(|_| (random_string(rng), random_value(rng, depth - 1)))
                .collect::<Map<_, _>>(),
        ),
    }
}

/// A number at the edges as often as not.
fn random_number(rng: &mut StdRng) -> Value {
    match rng.gen_range(0..8) {
        0 => json!(u64::MAX),
        1 => json!(i64::MIN),
        2 => json!(-1),
        3 => json!(0),
        4 => json!(1e308),
        5 => json!(-0.5),
        6 => json!(rng.gen_range(0..10)),
        _ => json!(rng.gen::<i32>()),
    }
}

/// Pieces random strings are made of: edges of the name and room rules.
const PIECES: &[&str] = &[
    "",
    "a",
    "fuzz",
    "connect4",
    "tictactoe",
    "match3",
    "chat",
    "canvas",
    "stage",
    "board",
    "member",
    "screen",
    "controller",
    "hard",
    "random",
    "s_",
    "g_",
    " ",
    "\u{0}",
    "\u{7f}",
    "\u{202e}",
    "\u{2066}",
    "\u{fffd}",
    "👩‍👩‍👧",
    "é",
    "\"",
    "\\",
    "../",
    "%00",
];

/// A string of random pieces, sometimes very long.
fn random_string(rng: &mut StdRng) -> String {
    if rng.gen_bool(0.05) {
        let length = rng.gen_range(33..LONG_STRING);
        return (0..length).map(|_| rng.gen_range('a'..='z')).collect();
    }
    (0..rng.gen_range(0..4))
        .filter_map(|_| PIECES.choose(rng).copied())
        .collect()
}

/// The request's text cut short, with a piece doubled, or with characters
/// put in at random places; valid UTF-8 still.
fn mutate_text(text: &str, rng: &mut StdRng) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return text.to_string();
    }
    match rng.gen_range(0..4) {
        0 => chars.truncate(rng.gen_range(0..chars.len())),
        1 => {
            let from = rng.gen_range(0..chars.len());
            let to = rng.gen_range(from..=chars.len());
            let piece: Vec<char> = chars[from..to].to_vec();
            chars.splice(to..to, piece);
        }
        2 => {
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..=chars.len());
                let c = *b"{}[]\",:\\0 e-".choose(rng).unwrap_or(&b' ');
                chars.insert(at, char::from(c));
            }
        }
        _ => {
            let at = rng.gen_range(0..chars.len());
            chars[at] = rng.gen_range('\u{0}'..='\u{ff}');
        }
    }
    chars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn mutated_requests_are_text_within_the_frame_limit() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut unchanged = 0;
        for _ in 0..2_000 {
            let text = mutated_request(&mut rng, 60_000);
            assert!(text.len() <= 60_000, "{} bytes", text.len());
            if templates()
                .iter()
                .any(|t| serde_json::to_string(t).is_ok_and(|t| t == text))
            {
                unchanged += 1;
            }
        }
        // A mutation may land back on a template, but seldom.
        assert!(unchanged < 100, "{unchanged} of 2000 unchanged");
    }
}
