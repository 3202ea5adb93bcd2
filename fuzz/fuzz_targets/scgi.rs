//! Fuzzes the SCGI codec: the input is decoded in one piece, in two pieces (the first byte
//! chooses where to cut) and byte by byte. Nothing may panic, all three must agree on the
//! events (body chunks merged) and the verdict, and the body must match CONTENT_LENGTH.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wsgid::protocol::scgi::{Connection, Event, ScgiError};
use wsgid::protocol::Limits;

fn limits() -> Limits {
    Limits {
        max_params_bytes: 4096,
        max_params: 64,
        max_scgi_header: 4096,
        max_body: Some(1 << 16),
    }
}

/// Decodes `pieces` in order, then the end of stream; returns the events with adjacent
/// body chunks merged and the first error.
fn decode<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> (Vec<Event>, Result<(), ScgiError>) {
    let mut conn = Connection::new(limits());
    let mut events: Vec<Event> = Vec::new();
    let mut result = Ok(());
    for piece in pieces {
        result = conn.receive(piece);
        drain(&mut conn, &mut events);
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        result = conn.receive_eof();
        drain(&mut conn, &mut events);
    }
    (events, result)
}

fn drain(conn: &mut Connection, events: &mut Vec<Event>) {
    while let Some(event) = conn.poll_event() {
        if let (Some(Event::Body(prev)), Event::Body(more)) = (events.last_mut(), &event) {
            prev.extend_from_slice(more);
            continue;
        }
        events.push(event);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, input)) = data.split_first() else {
        return;
    };
    let split = input.len() * usize::from(cut) / 255;
    let whole = decode(std::iter::once(input));
    let two = decode([&input[..split], &input[split..]].into_iter());
    let bytes = decode(input.chunks(1));
    assert_eq!(whole, two);
    assert_eq!(whole, bytes);

    let (events, _) = whole;
    let mut declared = None;
    let mut body = 0u64;
    for event in &events {
        match event {
            Event::Request { content_length, .. } => {
                assert!(declared.is_none(), "one request per connection");
                declared = Some(*content_length);
            }
            Event::Body(chunk) => body += chunk.len() as u64,
            Event::BodyEnd => assert_eq!(Some(body), declared),
        }
    }
    assert!(body <= declared.unwrap_or(0));
});
