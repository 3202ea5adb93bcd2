//! Output buffers of finished requests, kept for the next requests of the worker.

/// Output buffers of finished requests, kept for new ones so a small response allocates
/// none: at most `KEEP` of them, each of at most `MAX_CAPACITY` bytes (bigger ones, from
/// large responses, are freed).
#[derive(Default)]
pub struct SpareBuffers(Vec<Vec<u8>>);

impl SpareBuffers {
    const KEEP: usize = 64;
    const MAX_CAPACITY: usize = 16 << 10;

    /// An empty buffer: a finished request's, else a new one.
    pub fn take(&mut self) -> Vec<u8> {
        self.0.pop().unwrap_or_default()
    }

    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() > 0 && buf.capacity() <= Self::MAX_CAPACITY && self.0.len() < Self::KEEP {
            buf.clear();
            self.0.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SpareBuffers;

    #[test]
    fn keeps_at_most_keep_buffers_of_at_most_max_capacity() {
        let mut spare = SpareBuffers::default();
        let at = Vec::with_capacity(SpareBuffers::MAX_CAPACITY);
        let past = Vec::with_capacity(SpareBuffers::MAX_CAPACITY + 1);
        spare.recycle(past);
        spare.recycle(Vec::new());
        assert_eq!(spare.0.len(), 0, "too big, or nothing to keep");
        let mut b = at;
        b.extend_from_slice(b"old bytes");
        spare.recycle(b);
        let b = spare.take();
        assert!(b.is_empty() && b.capacity() >= SpareBuffers::MAX_CAPACITY);
        assert_eq!(spare.take().capacity(), 0, "empty: a new one");
        for _ in 0..SpareBuffers::KEEP + 1 {
            spare.recycle(Vec::with_capacity(64));
        }
        assert_eq!(spare.0.len(), SpareBuffers::KEEP);
    }
}
