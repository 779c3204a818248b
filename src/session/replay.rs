//! Frame numbers and the replay ring: every frame the server sends a
//! session (but `welcome` and `resumed`) is numbered 1, 2, 3, … across its
//! connections, and the last `limits.replay_frames` are kept, as the same
//! shared bytes that fanned out, so a resume can send exactly what the
//! client missed (PROTOCOL.md, *Reconnecting and recovery*).
//!
//! A session that has been sent nothing keeps nothing: the ring allocates
//! with its first frame.

use std::collections::VecDeque;

use bytestring::ByteString;

/// The numbered frames a session has sent, and the last of them kept.
pub(super) struct Replay {
    /// How many frames have been numbered: the number of the last one.
    numbered: u64,
    /// The last `most` numbered frames, oldest first.
    kept: VecDeque<ByteString>,
    /// `limits.replay_frames`.
    most: usize,
    /// Set for a session brought back after a restart: its numbers before
    /// the restart are gone, so a client's count cannot be matched with
    /// them until a resync has told it `last`.
    forgotten: bool,
}

impl Replay {
    /// Nothing numbered yet, keeping up to `most` frames.
    pub(super) fn new(most: usize) -> Replay {
        Replay {
            numbered: 0,
            kept: VecDeque::new(),
            most,
            forgotten: false,
        }
    }

    /// Numbered up to `last` on another node, which kept `frames` (the
    /// last of them): a session handed over from there numbers on.
    pub(super) fn carried(frames: Vec<ByteString>, last: u64, most: usize) -> Replay {
        let skip = frames.len().saturating_sub(most);
        Replay {
            numbered: last,
            kept: frames.into_iter().skip(skip).collect(),
            most,
            forgotten: false,
        }
    }

    /// Nothing numbered since a restart that lost the numbers before it.
    pub(super) fn forgotten(most: usize) -> Replay {
        Replay {
            forgotten: true,
            ..Replay::new(most)
        }
    }

    /// A resync has told the client `last`: counts match again.
    pub(super) fn resynced(&mut self) {
        self.forgotten = false;
    }

    /// Numbers `frame` and keeps it, letting the oldest go past `most`.
    pub(super) fn number(&mut self, frame: &ByteString) {
        self.numbered += 1;
        if self.most == 0 {
            return;
        }
        if self.kept.len() == self.most {
            self.kept.pop_front();
        }
        self.kept.push_back(frame.clone());
    }

    /// The number of the last numbered frame (0 before any).
    pub(super) fn last(&self) -> u64 {
        self.numbered
    }

    /// The frames after the client's count `received`, in order, if every
    /// one of them is still kept; `None` when `received` is above
    /// [`last`](Replay::last) or older than what is kept.
    pub(super) fn since(&self, received: u64) -> Option<impl Iterator<Item = &ByteString>> {
        if self.forgotten {
            return None;
        }
        let missed = self.numbered.checked_sub(received)?;
        let missed = usize::try_from(missed).ok()?;
        let skip = self.kept.len().checked_sub(missed)?;
        Some(self.kept.iter().skip(skip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(count: u64, most: usize) -> Replay {
        let mut replay = Replay::new(most);
        for n in 1..=count {
            replay.number(&ByteString::from(n.to_string()));
        }
        replay
    }

    fn since(replay: &Replay, received: u64) -> Option<Vec<String>> {
        let frames = replay.since(received)?;
        Some(frames.map(|frame| frame.to_string()).collect())
    }

    #[test]
    fn the_frames_after_the_count_come_back_in_order() {
        let replay = numbered(5, 3);
        assert_eq!(replay.last(), 5);
        assert_eq!(
            since(&replay, 2),
            Some(vec!["3".into(), "4".into(), "5".into()])
        );
        assert_eq!(since(&replay, 4), Some(vec!["5".into()]));
        assert_eq!(since(&replay, 5), Some(vec![]));
    }

    #[test]
    fn a_count_older_than_the_ring_or_above_the_last_is_refused() {
        let replay = numbered(5, 3);
        assert_eq!(since(&replay, 1), None, "frame 2 is no longer kept");
        assert_eq!(since(&replay, 6), None, "the client cannot have more");
    }

    #[test]
    fn keeping_nothing_recovers_only_a_client_that_missed_nothing() {
        let replay = numbered(4, 0);
        assert_eq!(since(&replay, 4), Some(vec![]));
        assert_eq!(since(&replay, 3), None);
    }

    #[test]
    fn after_a_restart_no_count_matches_until_a_resync() {
        let mut replay = Replay::forgotten(8);
        replay.number(&ByteString::from("1"));
        assert_eq!(since(&replay, 1), None, "a count from before the restart");
        replay.resynced();
        assert_eq!(since(&replay, 1), Some(vec![]));
    }

    #[test]
    fn an_idle_session_allocates_nothing() {
        let replay = Replay::new(256);
        assert_eq!(replay.kept.capacity(), 0);
        assert_eq!(since(&replay, 0), Some(vec![]));
    }
}
