//! Fuzzes the application side of the FastCGI codec: the input is fed to a `Connection` in
//! two pieces (the first byte chooses where to cut), and every event and output byte is
//! drained the way the worker does. Nothing may panic, whatever the bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wsgid::protocol::fastcgi::{
    encode_end_request, encode_stdout, Capabilities, Connection, Event, ProtocolStatus,
};
use wsgid::protocol::Limits;

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
    for piece in [&input[..split], &input[split..]] {
        if conn.receive(piece).is_err() {
            break;
        }
        while let Some(event) = conn.poll_event() {
            // Answer and finish requests the way the worker does, so ids get reused.
            match event {
                Event::StdinEnd { id } | Event::Abort { id } | Event::Rejected { id, .. } => {
                    encode_stdout(id, b"Status: 200 OK\r\n\r\n", &mut out);
                    encode_end_request(id, 0, ProtocolStatus::RequestComplete, &mut out);
                    conn.finish(id);
                }
                // Refused: the codec queued its END_REQUEST itself; the request never began.
                Event::Request { .. } | Event::Stdin { .. } | Event::Refused { .. } => {}
            }
        }
        conn.take_output(&mut out);
    }
    assert!(conn.active_requests() <= caps.max_reqs);
});
