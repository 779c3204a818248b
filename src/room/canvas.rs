//! A canvas room's board: where each member last said it is, and the
//! server's zombies, which drift toward the nearest player and stop on
//! reaching it. Plain code: the Room actor calls [`Canvas::tick`] at
//! `rooms.canvas_tick_hz` and sends a frame only when it says something moved.

use rand::Rng;

use crate::protocol::{Point, CANVAS_SIZE};

/// How far a zombie drifts in a second, in canvas units: slow enough that a
/// player who keeps moving gets away.
pub const ZOMBIE_SPEED_PER_SEC: f64 = 120.0;

/// The board of one canvas room.
#[derive(Debug, Clone)]
pub struct Canvas {
    /// Members that have sent a position, in the order they first did.
    players: Vec<(String, Point)>,
    /// The zombies.
    zombies: Vec<Point>,
    /// How far a zombie moves in one tick.
    step: f64,
    /// Whether anything moved since the last tick.
    moved: bool,
}

impl Canvas {
    /// A board with `zombies` zombies at random places, ticking `tick_hz`
    /// times a second.
    pub fn new(zombies: u32, tick_hz: u32, rng: &mut impl Rng) -> Canvas {
        let mut place = || Point {
            x: rng.gen_range(0.0..=CANVAS_SIZE),
            y: rng.gen_range(0.0..=CANVAS_SIZE),
        };
        let zombies = (0..zombies).map(|_| place()).collect();
        Canvas::with_zombies(zombies, tick_hz)
    }

    /// A board with zombies at the given places.
    pub fn with_zombies(zombies: Vec<Point>, tick_hz: u32) -> Canvas {
        let step = ZOMBIE_SPEED_PER_SEC / f64::from(tick_hz.max(1));
        Canvas {
            players: Vec::new(),
            zombies,
            step,
            moved: false,
        }
    }

    /// Places `session` at (`x`, `y`), clamped to the board.
    pub fn place(&mut self, session: &str, x: f64, y: f64) {
        let point = Point {
            x: clamp(x),
            y: clamp(y),
        };
        match self.players.iter_mut().find(|(id, _)| id == session) {
            Some((_, at)) if *at == point => {}
            Some((_, at)) => {
                *at = point;
                self.moved = true;
            }
            None => {
                self.players.push((session.to_string(), point));
                self.moved = true;
            }
        }
    }

    /// Takes `session` off the board.
    pub fn remove(&mut self, session: &str) {
        let before = self.players.len();
        self.players.retain(|(id, _)| id != session);
        self.moved |= self.players.len() != before;
    }

    /// Moves every zombie one step toward its nearest player; says whether
    /// anything (player or zombie) moved since the last tick.
    pub fn tick(&mut self) -> bool {
        for index in 0..self.zombies.len() {
            let zombie = self.zombies[index];
            let Some(target) = self.nearest_player(zombie) else {
                break;
            };
            let (dx, dy) = (target.x - zombie.x, target.y - zombie.y);
            let distance = dx.hypot(dy);
            if distance == 0.0 {
                continue;
            }
            self.zombies[index] = if distance <= self.step {
                target
            } else {
                Point {
                    x: zombie.x + dx / distance * self.step,
                    y: zombie.y + dy / distance * self.step,
                }
            };
            self.moved = true;
        }
        std::mem::take(&mut self.moved)
    }

    fn nearest_player(&self, from: Point) -> Option<Point> {
        let distance = |to: &Point| (to.x - from.x).hypot(to.y - from.y);
        let nearest = self.players.iter().map(|(_, at)| *at);
        nearest.min_by(|a, b| distance(a).total_cmp(&distance(b)))
    }

    /// The players, in the order they first sent a position.
    pub fn players(&self) -> &[(String, Point)] {
        &self.players
    }

    /// The zombies.
    pub fn zombies(&self) -> &[Point] {
        &self.zombies
    }
}

/// A coordinate within the board; not-a-number counts as 0.
fn clamp(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, CANVAS_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn at(x: f64, y: f64) -> Point {
        Point { x, y }
    }

    #[test]
    fn positions_are_clamped_to_the_board() {
        let mut canvas = Canvas::with_zombies(Vec::new(), 20);
        canvas.place("s_a", -5.0, 2000.0);
        assert_eq!(canvas.players()[0].1, at(0.0, 1000.0));
        canvas.place("s_a", f64::NAN, 500.0);
        assert_eq!(canvas.players()[0].1, at(0.0, 500.0));
    }

    #[test]
    fn a_tick_reports_movement_once() {
        let mut canvas = Canvas::with_zombies(Vec::new(), 20);
        assert!(!canvas.tick());
        canvas.place("s_a", 10.0, 10.0);
        assert!(canvas.tick());
        assert!(!canvas.tick(), "nothing moved since");
        canvas.place("s_a", 10.0, 10.0);
        assert!(!canvas.tick(), "the same position is no move");
        canvas.remove("s_a");
        assert!(canvas.tick());
    }

    #[test]
    fn zombies_wait_until_someone_is_there() {
        let mut canvas = Canvas::with_zombies(vec![at(100.0, 100.0)], 20);
        assert!(!canvas.tick());
        assert_eq!(canvas.zombies()[0], at(100.0, 100.0));
    }

    #[test]
    fn zombies_drift_toward_the_nearest_player_and_stop_on_it() {
        let mut canvas = Canvas::with_zombies(vec![at(0.0, 0.0)], 10);
        canvas.place("s_far", 1000.0, 1000.0);
        canvas.place("s_near", 30.0, 40.0);
        canvas.tick();
        // One step is 12 units toward (30, 40): 3-4-5 scaled.
        let zombie = canvas.zombies()[0];
        assert!(
            (zombie.x - 7.2).abs() < 1e-9 && (zombie.y - 9.6).abs() < 1e-9,
            "{zombie:?}"
        );
        for _ in 0..10 {
            canvas.tick();
        }
        assert_eq!(canvas.zombies()[0], at(30.0, 40.0));
        assert!(!canvas.tick(), "a zombie that reached its player stops");
    }

    #[test]
    fn the_same_seed_places_the_same_zombies() {
        let place = || {
            Canvas::new(5, 20, &mut rand_chacha::ChaCha8Rng::seed_from_u64(9))
                .zombies()
                .to_vec()
        };
        assert_eq!(place(), place());
    }

    #[test]
    fn random_zombies_start_on_the_board() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let canvas = Canvas::new(20, 20, &mut rng);
        assert_eq!(canvas.zombies().len(), 20);
        assert!(canvas
            .zombies()
            .iter()
            .all(|z| (0.0..=1000.0).contains(&z.x) && (0.0..=1000.0).contains(&z.y)));
    }
}
