//! Fuzzes the application side of the FastCGI codec: the input is fed to a `Connection` in
//! two pieces (the first byte chooses where to cut), and every event and output byte is
//! drained the way the worker does, requests ended through the codec's lifecycle
//! (`Connection::end`), complete or broken. Nothing may panic, whatever the bytes, and
//! ending a request affects only that request.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wsgid::protocol::fastcgi::{
    encode_end_request, encode_stdout, Capabilities, Connection, Event, ProtocolStatus,
};
use wsgid::protocol::{Limits, Next, Outcome};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, input)) = data.split_first() else {
        return;
    };
    let split = input.len() * usize::from(cut) / 255;
    let limits = Limits {
        max_params_bytes: 4096,
        max_params: 64,
        max_scgi_header: 4096,
        max_body: Some(1 << 16),
    };
    let caps = Capabilities {
        max_conns: 4,
        max_reqs: 4,
        mpxs_conns: cut & 1 == 0,
    };
    let mut conn = Connection::new(limits, caps);
    let mut out = Vec::new();
    let mut hard_closed = false;
    for piece in [&input[..split], &input[split..]] {
        if hard_closed || conn.receive(piece).is_err() {
            break;
        }
        while let Some(event) = conn.poll_event() {
            // Answer and end requests the way the worker does, so ids get reused; the
            // cut's parity decides whether a response completes or breaks off.
            match event {
                Event::StdinEnd { id } | Event::Abort { id } | Event::Rejected { id, .. } => {
                    let before = conn.active_requests();
                    let outcome = if cut & 2 == 0 {
                        encode_stdout(id, b"Status: 200 OK\r\n\r\n", &mut out);
                        encode_end_request(id, 0, ProtocolStatus::RequestComplete, &mut out);
                        Outcome::Complete
                    } else {
                        Outcome::Broken
                    };
                    let next = conn.end(id, outcome);
                    let after = conn.active_requests();
                    // Ending a request never ends another; ending one that is over changes
                    // nothing, whatever the outcome.
                    assert!(before - after <= 1);
                    let closing = if conn.wants_close() { Next::Close } else { Next::Keep };
                    assert_eq!(conn.end(id, Outcome::Broken), closing);
                    assert_eq!(conn.active_requests(), after);
                    if next == Next::CloseHard {
                        assert_eq!(outcome, Outcome::Broken);
                        hard_closed = true;
                    }
                }
                // Refused: the codec queued its END_REQUEST itself; the request never began.
                Event::Request { .. } | Event::Stdin { .. } | Event::Refused { .. } => {}
            }
        }
        conn.take_output(&mut out);
    }
    assert!(conn.active_requests() <= caps.max_reqs);
});
