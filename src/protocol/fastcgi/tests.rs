//! Unit and property tests of the FastCGI codec: the spec's Appendix B flows, every split of
//! the input, length-field edge cases, limits at and past their boundaries, multiplexing,
//! management records and malformed input.

use super::client::{
    encode_abort, encode_begin_request, encode_get_values, encode_name_value, encode_params,
    encode_stdin, ResponseDecoder, ResponseEvent,
};
use super::*;
use crate::protocol::{LimitKind, Limits, Next, Outcome, Params, Role};
use proptest::prelude::*;

const CAPS: Capabilities = Capabilities {
    max_conns: 10,
    max_reqs: 10,
    mpxs_conns: true,
};

fn conn() -> Connection {
    Connection::new(Limits::default(), CAPS)
}

fn roomy() -> Limits {
    Limits {
        max_params_bytes: usize::MAX,
        max_params: usize::MAX,
        max_scgi_header: usize::MAX,
        max_body: None,
    }
}

fn drain(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn feed(c: &mut Connection, bytes: &[u8]) -> Result<Vec<Event>, ProtocolError> {
    c.receive(bytes)?;
    Ok(drain(c))
}

/// Feeds `bytes` in pieces of `step` bytes.
fn feed_in_steps(
    c: &mut Connection,
    bytes: &[u8],
    step: usize,
) -> Result<Vec<Event>, ProtocolError> {
    let mut evs = Vec::new();
    for piece in bytes.chunks(step) {
        c.receive(piece)?;
        evs.extend(drain(c));
    }
    Ok(evs)
}

fn params(pairs: &[(&[u8], &[u8])]) -> Params {
    let mut p = Params::new();
    for (n, v) in pairs {
        p.push(n, v);
    }
    p
}

/// A raw record with `pad` bytes of padding.
fn record(t: u8, id: u16, content: &[u8], pad: u8) -> Vec<u8> {
    let mut v = Vec::new();
    Header {
        version: VERSION_1,
        record_type: t,
        request_id: id,
        content_length: content.len() as u16,
        padding_length: pad,
    }
    .encode(&mut v);
    v.extend_from_slice(content);
    v.extend(std::iter::repeat_n(0xAA, pad as usize));
    v
}

fn begin(id: u16, keep_conn: bool) -> Vec<u8> {
    let mut v = Vec::new();
    encode_begin_request(id, RESPONDER, keep_conn, &mut v);
    v
}

/// BEGIN_REQUEST, PARAMS stream, STDIN body (if any) and the empty STDIN.
fn request(id: u16, pairs: &[(&[u8], &[u8])], body: &[u8]) -> Vec<u8> {
    let mut v = begin(id, false);
    encode_params(id, pairs, &mut v);
    if !body.is_empty() {
        encode_stdin(id, body, &mut v);
    }
    encode_stdin(id, b"", &mut v);
    v
}

fn responses(c: &mut Connection) -> Vec<ResponseEvent> {
    let mut out = Vec::new();
    c.take_output(&mut out);
    let mut d = ResponseDecoder::new();
    d.receive(&out).expect("codec output decodes");
    assert_eq!(d.buffered(), 0);
    std::iter::from_fn(|| d.poll()).collect()
}

fn end(id: u16, status: ProtocolStatus) -> ResponseEvent {
    ResponseEvent::End {
        id,
        app_status: 0,
        protocol_status: status as u8,
    }
}

const SPEC_PARAMS: &[u8] = b"\x0b\x02SERVER_PORT80\x0b\x0eSERVER_ADDR199.170.183.42";

fn spec_params() -> Params {
    params(&[(b"SERVER_PORT", b"80"), (b"SERVER_ADDR", b"199.170.183.42")])
}

// ---------------------------------------------------------------- Appendix B flows

#[test]
fn appendix_b_1_simple_request() {
    let mut input = record(BEGIN_REQUEST, 1, &[0, 1, 0, 0, 0, 0, 0, 0], 0);
    input.extend(record(PARAMS, 1, SPEC_PARAMS, 0));
    input.extend(record(PARAMS, 1, b"", 0));
    input.extend(record(STDIN, 1, b"", 0));
    let mut c = conn();
    let evs = feed(&mut c, &input).unwrap();
    assert_eq!(
        evs,
        vec![
            Event::Request {
                id: 1,
                role: Role::Responder,
                params: spec_params()
            },
            Event::StdinEnd { id: 1 }
        ]
    );
    assert!(!c.has_output());
    assert_eq!(c.active_requests(), 1);

    let mut out = Vec::new();
    encode_stdout(1, b"Content-type: text/html\r\n\r\n<html>", &mut out);
    encode_end_request(1, 0, ProtocolStatus::RequestComplete, &mut out);
    let mut expected = record(STDOUT, 1, b"Content-type: text/html\r\n\r\n<html>", 0);
    expected.extend(record(STDOUT, 1, b"", 0));
    expected.extend(record(END_REQUEST, 1, &[0, 0, 0, 0, 0, 0, 0, 0], 0));
    assert_eq!(out, expected);
    c.end(1, Outcome::Complete);
    assert_eq!(c.active_requests(), 0);
}

#[test]
fn appendix_b_2_params_split_mid_name_and_stdin() {
    let mut input = begin(1, false);
    input.extend(record(PARAMS, 1, b"\x0b\x02SERVER_PORT80\x0b\x0eSER", 0));
    input.extend(record(PARAMS, 1, b"VER_ADDR199.170.183.42", 0));
    input.extend(record(PARAMS, 1, b"", 0));
    input.extend(record(STDIN, 1, b"quantity=100&item=3047936", 0));
    input.extend(record(STDIN, 1, b"", 0));
    let evs = feed(&mut conn(), &input).unwrap();
    assert_eq!(
        evs,
        vec![
            Event::Request {
                id: 1,
                role: Role::Responder,
                params: spec_params()
            },
            Event::Stdin {
                id: 1,
                data: b"quantity=100&item=3047936".to_vec()
            },
            Event::StdinEnd { id: 1 }
        ]
    );
}

#[test]
fn appendix_b_3_stderr_and_app_status() {
    let mut out = Vec::new();
    encode_stdout(1, b"Content-type: text/html\r\n\r\n<ht", &mut out);
    encode_stderr(1, b"config error: missing SI_UID\n", &mut out);
    encode_stdout(1, b"ml>\n<head> ... ", &mut out);
    encode_end_request(1, 938, ProtocolStatus::RequestComplete, &mut out);
    let mut d = ResponseDecoder::new();
    d.receive(&out).unwrap();
    let evs: Vec<_> = std::iter::from_fn(|| d.poll()).collect();
    assert_eq!(
        evs,
        vec![
            ResponseEvent::Stdout {
                id: 1,
                data: b"Content-type: text/html\r\n\r\n<ht".to_vec()
            },
            ResponseEvent::Stderr {
                id: 1,
                data: b"config error: missing SI_UID\n".to_vec()
            },
            ResponseEvent::Stdout {
                id: 1,
                data: b"ml>\n<head> ... ".to_vec()
            },
            ResponseEvent::End {
                id: 1,
                app_status: 938,
                protocol_status: 0
            },
        ]
    );
}

#[test]
fn appendix_b_4_multiplexed() {
    let mut c = conn();
    let mut input = begin(1, true);
    input.extend(record(PARAMS, 1, SPEC_PARAMS, 0));
    input.extend(record(PARAMS, 1, b"", 0));
    input.extend(begin(2, true));
    input.extend(record(PARAMS, 2, SPEC_PARAMS, 0));
    input.extend(record(STDIN, 1, b"", 0));
    let evs = feed(&mut c, &input).unwrap();
    assert_eq!(
        evs,
        vec![
            Event::Request {
                id: 1,
                role: Role::Responder,
                params: spec_params()
            },
            Event::StdinEnd { id: 1 }
        ]
    );
    let mut input = record(PARAMS, 2, b"", 0);
    input.extend(record(STDIN, 2, b"", 0));
    let evs = feed(&mut c, &input).unwrap();
    assert_eq!(
        evs,
        vec![
            Event::Request {
                id: 2,
                role: Role::Responder,
                params: spec_params()
            },
            Event::StdinEnd { id: 2 }
        ]
    );
    assert_eq!(c.active_requests(), 2);
    c.end(2, Outcome::Complete);
    c.end(1, Outcome::Complete);
    assert_eq!(c.active_requests(), 0);
}

#[test]
fn interleaved_bodies_stay_apart() {
    let mut c = conn();
    let mut input = begin(1, false);
    input.extend(begin(7, false));
    encode_params(7, &[(b"B", b"7")], &mut input);
    encode_params(1, &[(b"A", b"1")], &mut input);
    input.extend(record(STDIN, 1, b"one-a", 0));
    input.extend(record(STDIN, 7, b"seven", 0));
    input.extend(record(STDIN, 1, b"one-b", 0));
    input.extend(record(STDIN, 7, b"", 0));
    input.extend(record(STDIN, 1, b"", 0));
    let evs = feed_in_steps(&mut c, &input, 3).unwrap();
    assert_eq!(
        evs,
        vec![
            Event::Request {
                id: 7,
                role: Role::Responder,
                params: params(&[(b"B", b"7")])
            },
            Event::Request {
                id: 1,
                role: Role::Responder,
                params: params(&[(b"A", b"1")])
            },
            Event::Stdin {
                id: 1,
                data: b"one-a".to_vec()
            },
            Event::Stdin {
                id: 7,
                data: b"seven".to_vec()
            },
            Event::Stdin {
                id: 1,
                data: b"one-b".to_vec()
            },
            Event::StdinEnd { id: 7 },
            Event::StdinEnd { id: 1 },
        ]
    );
}

// ---------------------------------------------------------------- framing

/// A request that exercises most of the decoder: padding, a pair split across records,
/// 1- and 4-byte lengths, a management record and a body over two records.
fn busy_input() -> Vec<u8> {
    let mut v = record(BEGIN_REQUEST, 3, &[0, 1, 1, 0, 0, 0, 0, 0], 5);
    let mut stream = Vec::new();
    encode_name_value(b"REQUEST_METHOD", b"POST", &mut stream);
    encode_name_value(&[b'N'; 130], &[b'v'; 200], &mut stream);
    encode_name_value(b"CONTENT_LENGTH", b"11", &mut stream);
    let (a, b) = stream.split_at(16);
    v.extend(record(PARAMS, 3, a, 3));
    v.extend(record(GET_VALUES, 0, b"\x0d\x00FCGI_MAX_REQS", 1));
    v.extend(record(PARAMS, 3, b, 0));
    v.extend(record(PARAMS, 3, b"", 7));
    v.extend(record(STDIN, 3, b"hello", 2));
    v.extend(record(DATA, 3, b"ignored", 0));
    v.extend(record(STDIN, 3, b" world", 0));
    v.extend(record(STDIN, 3, b"", 255));
    v
}

fn busy_events() -> Vec<Event> {
    vec![
        Event::Request {
            id: 3,
            role: Role::Responder,
            params: params(&[
                (b"REQUEST_METHOD", b"POST"),
                (&[b'N'; 130], &[b'v'; 200]),
                (b"CONTENT_LENGTH", b"11"),
            ]),
        },
        Event::Stdin {
            id: 3,
            data: b"hello".to_vec(),
        },
        Event::Stdin {
            id: 3,
            data: b" world".to_vec(),
        },
        Event::StdinEnd { id: 3 },
    ]
}

#[test]
fn whole_input_with_padding() {
    let mut c = conn();
    assert_eq!(feed(&mut c, &busy_input()).unwrap(), busy_events());
    assert_eq!(
        responses(&mut c),
        vec![ResponseEvent::GetValuesResult {
            pairs: vec![(b"FCGI_MAX_REQS".to_vec(), b"10".to_vec())]
        }]
    );
}

#[test]
fn split_at_every_byte_boundary() {
    let input = busy_input();
    for at in 0..=input.len() {
        let mut c = conn();
        let mut evs = feed(&mut c, &input[..at]).unwrap();
        evs.extend(feed(&mut c, &input[at..]).unwrap());
        assert_eq!(evs, busy_events(), "split at {at}");
        assert_eq!(responses(&mut c).len(), 1, "split at {at}");
    }
}

#[test]
fn one_byte_at_a_time() {
    let mut c = conn();
    assert_eq!(
        feed_in_steps(&mut c, &busy_input(), 1).unwrap(),
        busy_events()
    );
    assert_eq!(responses(&mut c).len(), 1);
}

#[test]
fn every_three_way_split_of_a_small_request() {
    let input = request(1, &[(b"A", b"1"), (&[b'x'; 128], b"")], b"body");
    let expected = feed(&mut conn(), &input).unwrap();
    for i in 0..=input.len() {
        for j in i..=input.len() {
            let mut c = conn();
            let mut evs = feed(&mut c, &input[..i]).unwrap();
            evs.extend(feed(&mut c, &input[i..j]).unwrap());
            evs.extend(feed(&mut c, &input[j..]).unwrap());
            assert_eq!(evs, expected, "split at {i}, {j}");
        }
    }
}

#[test]
fn header_round_trip() {
    let h = Header {
        version: 1,
        record_type: STDIN,
        request_id: 0x1234,
        content_length: 0xfedc,
        padding_length: 9,
    };
    let mut v = Vec::new();
    h.encode(&mut v);
    assert_eq!(v, [1, 5, 0x12, 0x34, 0xfe, 0xdc, 9, 0]);
    let bytes: [u8; HEADER_LEN] = v.as_slice().try_into().unwrap();
    assert_eq!(Header::parse(&bytes), h);
    assert_eq!(h.body_len(), 0xfedc + 9);
}

#[test]
fn padding_on_every_record_type_is_skipped() {
    let mut input = record(BEGIN_REQUEST, 1, &[0, 1, 0, 0, 0, 0, 0, 0], 255);
    input.extend(record(PARAMS, 1, b"\x01\x01AB", 4));
    input.extend(record(PARAMS, 1, b"", 1));
    input.extend(record(ABORT_REQUEST, 1, b"", 8));
    input.extend(record(STDIN, 1, b"xyz", 5));
    input.extend(record(STDIN, 1, b"", 6));
    input.extend(record(42, 0, b"", 200));
    let mut c = conn();
    assert_eq!(
        feed_in_steps(&mut c, &input, 7).unwrap(),
        vec![
            Event::Request {
                id: 1,
                role: Role::Responder,
                params: params(&[(b"A", b"B")])
            },
            Event::Abort { id: 1 },
            Event::Stdin {
                id: 1,
                data: b"xyz".to_vec()
            },
            Event::StdinEnd { id: 1 },
        ]
    );
    assert_eq!(
        responses(&mut c),
        vec![ResponseEvent::UnknownType { record_type: 42 }]
    );
}

// ---------------------------------------------------------------- name/value lengths

#[test]
fn length_field_is_one_byte_up_to_127_then_four() {
    let mut v = Vec::new();
    encode_name_value(&[b'n'; 127], &[b'v'; 127], &mut v);
    assert_eq!(&v[..2], &[127, 127]);
    assert_eq!(v.len(), 2 + 254);
    let mut v = Vec::new();
    encode_name_value(&[b'n'; 128], &[b'v'; 127], &mut v);
    assert_eq!(&v[..5], &[0x80, 0, 0, 128, 127]);
    let mut v = Vec::new();
    encode_name_value(&[b'n'; 127], &[b'v'; 128], &mut v);
    assert_eq!(&v[..5], &[127, 0x80, 0, 0, 128]);
    let mut v = Vec::new();
    encode_name_value(b"", &[b'v'; 0x12345], &mut v);
    assert_eq!(&v[..5], &[0, 0x80, 0x01, 0x23, 0x45]);
}

#[test]
fn names_and_values_of_127_and_128_bytes() {
    for n in [0, 1, 126, 127, 128, 129, 255, 256] {
        for m in [0, 127, 128] {
            let name = vec![b'N'; n];
            let value = vec![b'V'; m];
            let input = request(1, &[(&name, &value), (b"X", b"y")], b"");
            let expected = params(&[(&name, &value), (b"X", b"y")]);
            for step in [1, 3, input.len()] {
                let evs = feed_in_steps(&mut conn(), &input, step).unwrap();
                assert_eq!(
                    evs[0],
                    Event::Request {
                        id: 1,
                        role: Role::Responder,
                        params: expected.clone()
                    },
                    "name {n}, value {m}, step {step}"
                );
            }
        }
    }
}

#[test]
fn four_byte_length_ignores_high_bit_only() {
    // 0x80000003 means 3, not 2^31 + 3 (FastCGI §3.4: the high bit is a marker).
    let mut input = begin(1, false);
    input.extend(record(PARAMS, 1, b"\x80\x00\x00\x03\x01abcZ", 0));
    input.extend(record(PARAMS, 1, b"", 0));
    let evs = feed(&mut conn(), &input).unwrap();
    assert_eq!(
        evs,
        vec![Event::Request {
            id: 1,
            role: Role::Responder,
            params: params(&[(b"abc", b"Z")])
        }]
    );
}

#[test]
fn values_of_65535_and_65536_bytes_span_records() {
    for len in [65535usize, 65536, 65535 + 65536] {
        let value: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let pairs: [(&[u8], &[u8]); 3] = [
            (b"HTTP_COOKIE", &value),
            (&value[..300], b"short"),
            (b"Z", b""),
        ];
        let input = request(1, &pairs, &value);
        let mut records = 0;
        let mut pos = 0;
        while pos < input.len() {
            let h = Header::parse(input[pos..pos + 8].try_into().unwrap());
            pos += 8 + h.body_len();
            records += 1;
        }
        assert!(records >= 6, "the stream needs several PARAMS records");
        for step in [input.len(), 65536, 7919] {
            let evs = feed_in_steps(&mut conn(), &input, step).unwrap();
            assert_eq!(
                evs[0],
                Event::Request {
                    id: 1,
                    role: Role::Responder,
                    params: params(&pairs)
                }
            );
            let body: Vec<u8> = evs[1..]
                .iter()
                .flat_map(|e| match e {
                    Event::Stdin { data, .. } => {
                        assert!(data.len() <= MAX_CONTENT);
                        data.clone()
                    }
                    _ => Vec::new(),
                })
                .collect();
            assert_eq!(body, value);
            assert_eq!(evs.last(), Some(&Event::StdinEnd { id: 1 }));
        }
    }
}

#[test]
fn empty_params_stream() {
    let evs = feed(&mut conn(), &request(9, &[], b"")).unwrap();
    assert_eq!(
        evs,
        vec![
            Event::Request {
                id: 9,
                role: Role::Responder,
                params: Params::new()
            },
            Event::StdinEnd { id: 9 }
        ]
    );
}

// ---------------------------------------------------------------- malformed PARAMS

fn params_stream_err(stream: &[u8]) -> ProtocolError {
    let mut input = begin(1, false);
    input.extend(record(PARAMS, 1, stream, 0));
    input.extend(record(PARAMS, 1, b"", 0));
    let mut c = conn();
    let err = feed(&mut c, &input).unwrap_err();
    // Sticky: the connection stays unusable.
    assert_eq!(c.receive(&begin(2, false)), Err(err.clone()));
    err
}

#[test]
fn pair_running_past_the_stream_is_an_error() {
    // Declared lengths past the end of the stream: the CVE-2025-23016 shape.
    params_stream_err(b"\x05\x05AB");
    params_stream_err(b"\x01\x05AB");
    params_stream_err(b"\x03");
    params_stream_err(b"\x80\x00");
    params_stream_err(b"\x01\x80\x00\x00");
    params_stream_err(b"\x01\x01AB\x02");
    params_stream_err(b"\x80\x00\x01\x00\x00abc");
    let e = params_stream_err(b"\x01\x01AB\x01\x02C");
    assert!(e.reason.contains("name-value"), "{e}");
    assert!(e.to_string().starts_with("FastCGI protocol error"));
}

#[test]
fn huge_declared_length_is_rejected_before_buffering() {
    let limits = Limits {
        max_params_bytes: 1000,
        ..Limits::default()
    };
    let mut c = Connection::new(limits, CAPS);
    let mut input = begin(1, false);
    // Name of 2^31-1 bytes declared; none of it sent.
    input.extend(record(PARAMS, 1, b"\xff\xff\xff\xff\x01", 0));
    assert_eq!(
        feed(&mut c, &input).unwrap(),
        vec![Event::Rejected {
            id: 1,
            limit: LimitKind::ParamsBytes,
        }]
    );
    // The rest of the stream, however malformed, is discarded.
    assert_eq!(
        feed(&mut c, &record(PARAMS, 1, b"\x05", 0)).unwrap(),
        vec![]
    );
    assert_eq!(feed(&mut c, &record(PARAMS, 1, b"", 0)).unwrap(), vec![]);
    assert_eq!(feed(&mut c, &record(STDIN, 1, b"zz", 0)).unwrap(), vec![]);
    assert_eq!(c.active_requests(), 1);
    c.end(1, Outcome::Complete);
    assert_eq!(c.active_requests(), 0);
    // The connection is still usable.
    assert_eq!(
        feed(&mut c, &request(1, &[(b"A", b"")], b""))
            .unwrap()
            .len(),
        2
    );
}

// ---------------------------------------------------------------- limits

fn limited(max_params_bytes: usize, max_params: usize, max_body: Option<u64>) -> Connection {
    Connection::new(
        Limits {
            max_params_bytes,
            max_params,
            max_scgi_header: 0,
            max_body,
        },
        CAPS,
    )
}

fn rejected(id: u16, limit: LimitKind) -> Event {
    Event::Rejected { id, limit }
}

#[test]
fn max_params_bytes_at_and_past() {
    let at: [(&[u8], &[u8]); 2] = [(b"ABC", b"defg"), (b"H", b"ij")]; // 3+4+1+2 = 10
    for step in [1, 1000] {
        let evs = feed_in_steps(&mut limited(10, 100, None), &request(1, &at, b""), step).unwrap();
        assert!(matches!(evs[0], Event::Request { .. }), "{evs:?}");

        let past: [(&[u8], &[u8]); 2] = [(b"ABC", b"defg"), (b"H", b"ijk")];
        let evs =
            feed_in_steps(&mut limited(10, 100, None), &request(1, &past, b"x"), step).unwrap();
        assert_eq!(evs, vec![rejected(1, LimitKind::ParamsBytes)]);

        // One pair alone past the limit.
        let evs = feed_in_steps(
            &mut limited(10, 100, None),
            &request(1, &[(b"0123456789", b"x")], b""),
            step,
        )
        .unwrap();
        assert_eq!(evs, vec![rejected(1, LimitKind::ParamsBytes)]);
    }
}

#[test]
fn max_params_bytes_counts_names_and_values_not_length_fields() {
    let name = vec![b'n'; 200];
    let value = vec![b'v'; 300];
    let input = request(1, &[(&name, &value)], b"");
    let evs = feed(&mut limited(500, 1, None), &input).unwrap();
    assert!(matches!(evs[0], Event::Request { .. }));
    let evs = feed(&mut limited(499, 1, None), &input).unwrap();
    assert_eq!(evs, vec![rejected(1, LimitKind::ParamsBytes)]);
}

#[test]
fn max_params_at_and_past() {
    let three: [(&[u8], &[u8]); 3] = [(b"A", b""), (b"B", b""), (b"C", b"")];
    let evs = feed(&mut limited(1000, 3, None), &request(1, &three, b"")).unwrap();
    assert!(matches!(evs[0], Event::Request { .. }));
    let evs = feed_in_steps(&mut limited(1000, 2, None), &request(1, &three, b"b"), 1).unwrap();
    assert_eq!(evs, vec![rejected(1, LimitKind::ParamsCount)]);
    let evs = feed(&mut limited(1000, 0, None), &request(1, &three, b"")).unwrap();
    assert_eq!(evs, vec![rejected(1, LimitKind::ParamsCount)]);
    // No params at all is fine even with a limit of zero.
    let evs = feed(&mut limited(0, 0, None), &request(1, &[], b"")).unwrap();
    assert!(matches!(evs[0], Event::Request { .. }));
}

#[test]
fn declared_content_length_at_and_past_max_body() {
    let at = request(1, &[(b"CONTENT_LENGTH", b"100")], b"");
    let evs = feed(&mut limited(1000, 10, Some(100)), &at).unwrap();
    assert!(matches!(evs[0], Event::Request { .. }));

    let mut c = limited(1000, 10, Some(100));
    let past = request(1, &[(b"CONTENT_LENGTH", b"101")], &[b'x'; 101]);
    assert_eq!(
        feed(&mut c, &past).unwrap(),
        vec![rejected(1, LimitKind::Body)]
    );
    assert_eq!(c.active_requests(), 1);

    // The last occurrence counts.
    let twice = request(
        1,
        &[
            (b"CONTENT_LENGTH", b"5"),
            (b"CONTENT_LENGTH", b"99999999999999999999999"),
        ],
        b"",
    );
    let evs = feed(&mut limited(1000, 10, Some(100)), &twice).unwrap();
    assert_eq!(evs, vec![rejected(1, LimitKind::Body)]);

    // Not a number (nginx sends '' on GET): unknown length, not a rejection.
    for v in [&b""[..], b"abc", b"-1", b" 5"] {
        let input = request(1, &[(b"CONTENT_LENGTH", v)], b"");
        let evs = feed(&mut limited(1000, 10, Some(0)), &input).unwrap();
        assert!(matches!(evs[0], Event::Request { .. }), "{v:?}");
    }
}

#[test]
fn streamed_body_at_and_past_max_body() {
    let mut c = limited(1000, 10, Some(10));
    let mut input = begin(1, false);
    encode_params(1, &[], &mut input);
    input.extend(record(STDIN, 1, b"12345", 0));
    input.extend(record(STDIN, 1, b"67890", 0));
    input.extend(record(STDIN, 1, b"", 0));
    let evs = feed(&mut c, &input).unwrap();
    assert_eq!(evs.len(), 4);
    assert_eq!(evs[3], Event::StdinEnd { id: 1 });

    let mut c = limited(1000, 10, Some(10));
    let mut input = begin(1, false);
    encode_params(1, &[], &mut input);
    input.extend(record(STDIN, 1, b"12345", 0));
    input.extend(record(STDIN, 1, b"678901", 0));
    input.extend(record(STDIN, 1, b"more", 0));
    input.extend(record(STDIN, 1, b"", 0));
    let evs = feed_in_steps(&mut c, &input, 2).unwrap();
    assert_eq!(
        evs,
        vec![
            Event::Request {
                id: 1,
                role: Role::Responder,
                params: Params::new()
            },
            Event::Stdin {
                id: 1,
                data: b"12345".to_vec()
            },
            rejected(1, LimitKind::Body),
        ]
    );
    assert_eq!(c.active_requests(), 1);
}

#[test]
fn rejected_keeps_keep_conn_and_abort_still_reported() {
    let mut c = limited(1, 10, None);
    let mut input = begin(4, true);
    encode_params(4, &[(b"AB", b"")], &mut input);
    encode_abort(4, &mut input);
    assert_eq!(
        feed(&mut c, &input).unwrap(),
        vec![
            Event::Rejected {
                id: 4,
                limit: LimitKind::ParamsBytes,
            },
            Event::Abort { id: 4 }
        ]
    );
    // The caller answered the rejection: FCGI_KEEP_CONN keeps the connection open.
    assert_eq!(c.end(4, Outcome::Complete), Next::Keep);
    assert!(!c.wants_close());
}

// ---------------------------------------------------------------- request lifecycle

#[test]
fn keep_conn_flag() {
    for (flags, keep) in [(0u8, false), (1, true), (0xff, true), (0xfe, false)] {
        let mut c = conn();
        let mut input = record(BEGIN_REQUEST, 1, &[0, 1, flags, 0, 0, 0, 0, 0], 0);
        encode_params(1, &[], &mut input);
        let evs = feed(&mut c, &input).unwrap();
        assert_eq!(
            evs,
            vec![Event::Request {
                id: 1,
                role: Role::Responder,
                params: Params::new()
            }]
        );
        // FastCGI §5.1: without FCGI_KEEP_CONN the application closes after responding.
        assert!(!c.wants_close());
        let next = c.end(1, Outcome::Complete);
        assert_eq!(next, if keep { Next::Keep } else { Next::Close }, "{flags}");
        assert_eq!(c.wants_close(), !keep);
        assert!(
            !c.has_output(),
            "a complete response's END_REQUEST is the caller's"
        );
    }
}

#[test]
fn one_request_without_keep_conn_closes_the_connection_for_good() {
    let mut c = conn();
    let mut input = begin(1, true);
    input.extend(begin(2, false));
    encode_params(1, &[], &mut input);
    encode_params(2, &[], &mut input);
    assert_eq!(feed(&mut c, &input).unwrap().len(), 2);
    assert_eq!(c.end(2, Outcome::Complete), Next::Close);
    // The other request still ends; the connection stays closing.
    assert_eq!(c.end(1, Outcome::Complete), Next::Close);
    assert_eq!(c.end(9, Outcome::Complete), Next::Close);
}

#[test]
fn a_broken_response_ends_alone_when_others_share_the_connection() {
    let mut c = conn();
    let mut input = begin(1, true);
    input.extend(begin(2, true));
    encode_params(1, &[], &mut input);
    encode_params(2, &[], &mut input);
    assert_eq!(feed(&mut c, &input).unwrap().len(), 2);
    // Request 2 shares the connection: request 1 ends with appStatus 1, the rest goes on.
    assert_eq!(c.end(1, Outcome::Broken), Next::Keep);
    assert_eq!(
        responses(&mut c),
        vec![ResponseEvent::End {
            id: 1,
            app_status: 1,
            protocol_status: ProtocolStatus::RequestComplete as u8,
        }]
    );
    // The last one broken: only a cut connection tells the front end.
    assert_eq!(c.end(2, Outcome::Broken), Next::CloseHard);
    assert!(!c.has_output());
    assert_eq!(c.active_requests(), 0);
}

#[test]
fn a_request_still_receiving_params_counts_as_sharing_the_connection() {
    let mut c = conn();
    let mut input = begin(1, true);
    encode_params(1, &[], &mut input);
    input.extend(begin(2, true));
    assert_eq!(feed(&mut c, &input).unwrap().len(), 1);
    assert_eq!(c.end(1, Outcome::Broken), Next::Keep);
    assert_eq!(responses(&mut c).len(), 1);
}

#[test]
fn abort_for_active_and_unknown_ids() {
    // Aborted while its params arrive: never handed on, so the codec ends it itself
    // (FastCGI §5.4) and, without FCGI_KEEP_CONN, the connection closes.
    for keep in [false, true] {
        let mut c = conn();
        let mut input = begin(1, keep);
        encode_abort(1, &mut input);
        encode_abort(2, &mut input);
        assert_eq!(feed(&mut c, &input).unwrap(), vec![]);
        assert_eq!(c.active_requests(), 0);
        assert_eq!(
            responses(&mut c),
            vec![end(1, ProtocolStatus::RequestComplete)]
        );
        assert_eq!(c.wants_close(), !keep);
        // Stray records for it afterwards are ignored, and its id can be used again.
        let mut late = record(PARAMS, 1, b"\x01\x01AB", 0);
        late.extend(record(PARAMS, 1, b"", 0));
        assert_eq!(feed(&mut c, &late).unwrap(), vec![]);
        assert_eq!(feed(&mut c, &request(1, &[], b"")).unwrap().len(), 2);
    }
    // Aborted once handed on (during the body, or after it): the application's to stop.
    for body_end in [false, true] {
        let mut c = conn();
        let mut input = begin(1, false);
        encode_params(1, &[], &mut input);
        if body_end {
            encode_stdin(1, b"", &mut input);
        }
        encode_abort(1, &mut input);
        let evs = feed(&mut c, &input).unwrap();
        assert_eq!(evs.last(), Some(&Event::Abort { id: 1 }));
        assert!(!c.has_output());
        assert_eq!(c.active_requests(), 1);
    }
}

#[test]
fn stray_records_after_finish_are_ignored() {
    let mut c = conn();
    let mut input = begin(1, false);
    encode_params(1, &[(b"A", b"1")], &mut input);
    assert_eq!(feed(&mut c, &input).unwrap().len(), 1);
    c.end(1, Outcome::Complete);
    c.end(1, Outcome::Complete); // twice is harmless
    c.end(77, Outcome::Complete); // unknown too
    let mut late = record(STDIN, 1, b"late body", 0);
    late.extend(record(STDIN, 1, b"", 0));
    late.extend(record(PARAMS, 1, b"\x01\x01AB", 0));
    late.extend(record(PARAMS, 1, b"", 0));
    late.extend(record(DATA, 1, b"d", 0));
    encode_abort(1, &mut late);
    assert_eq!(feed(&mut c, &late).unwrap(), vec![]);
    assert!(!c.has_output());
    // The id can be reused.
    assert_eq!(feed(&mut c, &request(1, &[], b"x")).unwrap().len(), 3);
}

#[test]
fn finish_in_the_middle_of_a_record() {
    let mut c = conn();
    let mut input = begin(1, false);
    encode_params(1, &[], &mut input);
    assert_eq!(feed(&mut c, &input).unwrap().len(), 1);
    let stdin = record(STDIN, 1, b"0123456789", 0);
    assert_eq!(feed(&mut c, &stdin[..12]).unwrap(), vec![]);
    c.end(1, Outcome::Complete);
    assert_eq!(feed(&mut c, &stdin[12..]).unwrap(), vec![]);
    assert_eq!(feed(&mut c, &request(2, &[], b"")).unwrap().len(), 2);
}

#[test]
fn records_for_unknown_ids_are_ignored() {
    let mut input = record(PARAMS, 5, b"\x01\x01AB", 0);
    input.extend(record(PARAMS, 5, b"", 0));
    input.extend(record(STDIN, 5, b"x", 0));
    input.extend(record(STDIN, 5, b"", 0));
    input.extend(record(DATA, 5, b"x", 0));
    input.extend(record(ABORT_REQUEST, 5, b"", 0));
    input.extend(record(GET_VALUES, 5, b"\x0d\x00FCGI_MAX_REQS", 0));
    input.extend(record(200, 5, b"future", 0));
    let mut c = conn();
    assert_eq!(feed(&mut c, &input).unwrap(), vec![]);
    assert!(!c.has_output());
}

#[test]
fn extra_stdin_and_params_after_their_end_are_ignored() {
    let mut input = request(1, &[(b"A", b"1")], b"abc");
    input.extend(record(STDIN, 1, b"extra", 0));
    input.extend(record(STDIN, 1, b"", 0));
    input.extend(record(PARAMS, 1, b"\x01\x01BC", 0));
    input.extend(record(PARAMS, 1, b"", 0));
    input.extend(record(DATA, 1, b"filter data", 0));
    let evs = feed(&mut conn(), &input).unwrap();
    assert_eq!(evs.len(), 3);
    assert_eq!(evs[2], Event::StdinEnd { id: 1 });
}

#[test]
fn filter_and_unknown_roles_are_refused() {
    let mut c = conn();
    let mut input = Vec::new();
    encode_begin_request(1, FILTER, true, &mut input);
    encode_begin_request(2, 0x7777, true, &mut input);
    encode_begin_request(3, 0, true, &mut input);
    encode_params(1, &[(b"A", b"")], &mut input);
    input.extend(record(STDIN, 1, b"", 0));
    input.extend(record(DATA, 1, b"filter data", 0));
    let refused = |id| Event::Refused {
        id,
        status: ProtocolStatus::UnknownRole,
    };
    assert_eq!(
        feed(&mut c, &input).unwrap(),
        vec![refused(1), refused(2), refused(3)]
    );
    assert_eq!(c.active_requests(), 0);
    assert!(!c.wants_close());
    assert_eq!(
        responses(&mut c),
        vec![
            end(1, ProtocolStatus::UnknownRole),
            end(2, ProtocolStatus::UnknownRole),
            end(3, ProtocolStatus::UnknownRole),
        ]
    );
    assert!(!c.has_output());
    // The exact bytes: END_REQUEST only, no STDOUT stream; and without FCGI_KEEP_CONN
    // the connection then closes.
    let mut c = conn();
    let mut input = Vec::new();
    encode_begin_request(1, FILTER, false, &mut input);
    c.receive(&input).unwrap();
    let mut out = vec![0xEE];
    c.take_output(&mut out);
    assert_eq!(out, [0xEE, 1, 3, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0]);
    assert!(c.wants_close());
}

#[test]
fn authorizer_requests_have_no_body() {
    let mut c = conn();
    let mut input = Vec::new();
    encode_begin_request(1, AUTHORIZER, true, &mut input);
    encode_params(1, &[(b"REQUEST_URI", b"/private/x")], &mut input);
    // FastCGI §6.3: no body. What a front end sends anyway is ignored.
    input.extend(record(STDIN, 1, b"not a body", 0));
    input.extend(record(STDIN, 1, b"", 0));
    for step in [1, 7, input.len()] {
        let mut c = conn();
        assert_eq!(
            feed_in_steps(&mut c, &input, step).unwrap(),
            vec![
                Event::Request {
                    id: 1,
                    role: Role::Authorizer,
                    params: params(&[(b"REQUEST_URI", b"/private/x")]),
                },
                Event::StdinEnd { id: 1 },
            ]
        );
    }
    // Without any STDIN at all, too; and it ends as any request does.
    let mut input = Vec::new();
    encode_begin_request(1, AUTHORIZER, true, &mut input);
    encode_params(1, &[], &mut input);
    assert_eq!(feed(&mut c, &input).unwrap().len(), 2);
    assert_eq!(c.end(1, Outcome::Complete), Next::Keep);
    assert_eq!(c.active_requests(), 0);
}

#[test]
fn second_request_without_multiplexing_is_refused() {
    let caps = Capabilities {
        max_conns: 1,
        max_reqs: 1,
        mpxs_conns: false,
    };
    let mut c = Connection::new(Limits::default(), caps);
    let mut input = begin(1, true);
    input.extend(begin(2, true));
    encode_params(2, &[(b"X", b"")], &mut input);
    encode_params(1, &[(b"A", b"")], &mut input);
    let evs = feed(&mut c, &input).unwrap();
    assert_eq!(evs.len(), 2);
    assert_eq!(
        evs[0],
        Event::Refused {
            id: 2,
            status: ProtocolStatus::CantMpxConn,
        }
    );
    assert!(matches!(evs[1], Event::Request { id: 1, .. }));
    assert_eq!(responses(&mut c), vec![end(2, ProtocolStatus::CantMpxConn)]);
    assert_eq!(c.active_requests(), 1);
    // After the first finishes, a new one is accepted.
    c.end(1, Outcome::Complete);
    assert_eq!(feed(&mut c, &request(2, &[], b"")).unwrap().len(), 2);
}

#[test]
fn max_reqs_at_and_past() {
    let caps = Capabilities {
        max_conns: 1,
        max_reqs: 2,
        mpxs_conns: true,
    };
    let mut c = Connection::new(Limits::default(), caps);
    let mut input = begin(1, true);
    input.extend(begin(2, true));
    input.extend(begin(3, true));
    feed(&mut c, &input).unwrap();
    assert_eq!(c.active_requests(), 2);
    assert_eq!(responses(&mut c), vec![end(3, ProtocolStatus::Overloaded)]);

    let mut c = Connection::new(
        Limits::default(),
        Capabilities {
            max_reqs: 0,
            ..caps
        },
    );
    feed(&mut c, &begin(1, false)).unwrap();
    assert_eq!(responses(&mut c), vec![end(1, ProtocolStatus::Overloaded)]);
}

// ---------------------------------------------------------------- management records

#[test]
fn get_values_answers_known_names_once() {
    let mut c = Connection::new(
        Limits::default(),
        Capabilities {
            max_conns: 64,
            max_reqs: 8,
            mpxs_conns: false,
        },
    );
    let mut input = Vec::new();
    encode_get_values(
        &[
            b"FCGI_MPXS_CONNS",
            b"FCGI_UNKNOWN_THING",
            b"FCGI_MAX_CONNS",
            b"FCGI_MAX_REQS",
            b"FCGI_MAX_CONNS",
        ],
        &mut input,
    );
    assert_eq!(feed_in_steps(&mut c, &input, 1).unwrap(), vec![]);
    assert_eq!(
        responses(&mut c),
        vec![ResponseEvent::GetValuesResult {
            pairs: vec![
                (b"FCGI_MPXS_CONNS".to_vec(), b"0".to_vec()),
                (b"FCGI_MAX_CONNS".to_vec(), b"64".to_vec()),
                (b"FCGI_MAX_REQS".to_vec(), b"8".to_vec()),
            ]
        }]
    );

    let mut input = Vec::new();
    encode_get_values(&[b"FCGI_MPXS_CONNS"], &mut input);
    encode_get_values(&[], &mut input);
    encode_get_values(&[b"OTHER"], &mut input);
    let mut c = conn();
    c.receive(&input).unwrap();
    assert_eq!(
        responses(&mut c),
        vec![
            ResponseEvent::GetValuesResult {
                pairs: vec![(b"FCGI_MPXS_CONNS".to_vec(), b"1".to_vec())]
            },
            ResponseEvent::GetValuesResult { pairs: vec![] },
            ResponseEvent::GetValuesResult { pairs: vec![] },
        ]
    );
}

#[test]
fn get_values_with_values_and_during_a_request() {
    // Values in a GET_VALUES query are ignored; the query may sit between a request's records.
    let mut input = begin(1, false);
    input.extend(record(GET_VALUES, 0, b"\x0d\x03FCGI_MAX_REQSabc", 0));
    encode_params(1, &[], &mut input);
    let mut c = conn();
    assert_eq!(feed(&mut c, &input).unwrap().len(), 1);
    assert_eq!(
        responses(&mut c),
        vec![ResponseEvent::GetValuesResult {
            pairs: vec![(b"FCGI_MAX_REQS".to_vec(), b"10".to_vec())]
        }]
    );
}

#[test]
fn malformed_get_values_is_an_error() {
    let mut c = conn();
    assert!(c
        .receive(&record(GET_VALUES, 0, b"\x0d\x00FCGI", 0))
        .is_err());
}

#[test]
fn unknown_management_types_get_unknown_type() {
    let mut input = record(12, 0, b"", 0);
    input.extend(record(255, 0, b"some content", 3));
    input.extend(record(BEGIN_REQUEST, 0, &[0, 1, 0, 0, 0, 0, 0, 0], 0));
    input.extend(record(PARAMS, 0, b"\x01\x01AB", 0));
    let mut c = conn();
    assert_eq!(feed_in_steps(&mut c, &input, 5).unwrap(), vec![]);
    assert_eq!(c.active_requests(), 0);
    assert_eq!(
        responses(&mut c),
        vec![
            ResponseEvent::UnknownType { record_type: 12 },
            ResponseEvent::UnknownType { record_type: 255 },
            ResponseEvent::UnknownType {
                record_type: BEGIN_REQUEST
            },
            ResponseEvent::UnknownType {
                record_type: PARAMS
            },
        ]
    );
}

// ---------------------------------------------------------------- connection errors

fn assert_conn_error(input: &[u8], why: &str) {
    for step in [1, input.len().max(1)] {
        let mut c = conn();
        let r = feed_in_steps(&mut c, input, step);
        assert!(r.is_err(), "{why}: {r:?}");
        assert!(c.receive(b"").is_err(), "{why}: error is sticky");
    }
}

#[test]
fn bad_version_is_an_error() {
    for v in [0u8, 2, 0xff] {
        let mut input = begin(1, false);
        input[0] = v;
        assert_conn_error(&input, "version");
        // Also in the middle of a connection, after a good record.
        let mut input = request(1, &[], b"");
        let mut bad = record(STDIN, 1, b"", 0);
        bad[0] = v;
        input.extend(bad);
        assert_conn_error(&input, "version mid-stream");
    }
}

/// An HTTP client pointed at the FastCGI port (its first byte, `G` = 71, reads as the
/// record's version) is a distinct error, whose reply tells it to put a web server in front;
/// in any split of the input. A bad version anywhere else is malformed FastCGI.
#[test]
fn http_request_on_the_fastcgi_port_is_recognised() {
    let get = b"GET / HTTP/1.1\r\nHost: localhost:9000\r\nUser-Agent: curl/7.88.1\r\n\r\n";
    for step in [1, 3, 7, 8, get.len()] {
        let mut c = conn();
        let e = feed_in_steps(&mut c, get, step).unwrap_err();
        assert_eq!(e.kind, ErrorKind::HttpRequest, "step {step}: {e}");
        assert_eq!(e.http_reply(), Some(crate::protocol::NOT_HTTP_FASTCGI));
        assert!(e.to_string().contains("web server"), "{e}");
        assert!(
            !c.has_output(),
            "the codec queues no FastCGI records for it"
        );
    }
    let mut c = conn();
    let e = feed(&mut c, b"OPTIONS * HTTP/1.1\r\n\r\n").unwrap_err();
    assert_eq!(e.kind, ErrorKind::HttpRequest);

    // Not HTTP: other garbage at the start, and an HTTP-looking header after a good record.
    let mut c = conn();
    let e = feed(&mut c, b"\x16\x03\x01\x02\x00\x01\x00\x01").unwrap_err();
    assert_eq!((e.kind, e.http_reply()), (ErrorKind::Malformed, None));
    let mut input = request(1, &[], b"");
    input.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    let mut c = conn();
    let e = feed(&mut c, &input).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Malformed, "{e}");
    assert!(e.to_string().contains("version 71"), "{e}");
}

#[test]
fn application_record_types_from_a_front_end_are_errors() {
    for t in [END_REQUEST, STDOUT, STDERR, GET_VALUES_RESULT, UNKNOWN_TYPE] {
        for id in [0, 1] {
            assert_conn_error(&record(t, id, b"", 0), "app-only type");
        }
    }
}

#[test]
fn begin_request_for_an_active_id_is_an_error() {
    let mut input = begin(1, false);
    input.extend(begin(1, false));
    assert_conn_error(&input, "duplicate begin");
    // Even after its Request event, until finish().
    let mut input = request(1, &[], b"");
    input.extend(begin(1, false));
    assert_conn_error(&input, "begin while active");
}

#[test]
fn begin_request_of_the_wrong_size_is_an_error() {
    assert_conn_error(&record(BEGIN_REQUEST, 1, &[0, 1, 0], 0), "short begin");
    assert_conn_error(
        &record(BEGIN_REQUEST, 1, &[0, 1, 0, 0, 0, 0, 0, 0, 0], 0),
        "long begin",
    );
}

#[test]
fn stdin_before_params_end_is_an_error() {
    let mut input = begin(1, false);
    input.extend(record(PARAMS, 1, b"\x01\x01AB", 0));
    input.extend(record(STDIN, 1, b"body", 0));
    assert_conn_error(&input, "stdin before params end");
    let mut input = begin(1, false);
    input.extend(record(STDIN, 1, b"", 0));
    assert_conn_error(&input, "empty stdin right after begin");
}

#[test]
fn empty_and_partial_input_yield_nothing() {
    let mut c = conn();
    c.receive(b"").unwrap();
    c.receive(&[1, 1, 0]).unwrap();
    assert_eq!(c.poll_event(), None);
    assert!(!c.has_output());
    assert_eq!(c.active_requests(), 0);
}

// ---------------------------------------------------------------- output encoders

#[test]
fn stream_encoders_split_at_max_content() {
    let mut out = Vec::new();
    encode_stdout(1, b"", &mut out);
    encode_stderr(1, b"", &mut out);
    assert!(out.is_empty());
    for (len, records) in [(1usize, 1usize), (65535, 1), (65536, 2), (3 * 65535 + 1, 4)] {
        let data = vec![7u8; len];
        for stderr in [false, true] {
            let mut out = Vec::new();
            if stderr {
                encode_stderr(0x0102, &data, &mut out);
            } else {
                encode_stdout(0x0102, &data, &mut out);
            }
            assert_eq!(out.len(), len + 8 * records);
            assert_eq!(&out[..4], &[1, if stderr { STDERR } else { STDOUT }, 1, 2]);
        }
    }
}

#[test]
fn end_request_bytes() {
    let mut out = Vec::new();
    encode_end_request(0x0203, 0x01020304, ProtocolStatus::Overloaded, &mut out);
    assert_eq!(
        out,
        [
            1,
            STDOUT,
            2,
            3,
            0,
            0,
            0,
            0, //
            1,
            END_REQUEST,
            2,
            3,
            0,
            8,
            0,
            0, //
            1,
            2,
            3,
            4,
            2,
            0,
            0,
            0
        ]
    );
}

#[test]
fn client_encoders_bytes() {
    let mut out = Vec::new();
    encode_begin_request(0x0100, RESPONDER, true, &mut out);
    assert_eq!(out, [1, 1, 1, 0, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
    let mut out = Vec::new();
    encode_params(2, &[(b"A", b"BC")], &mut out);
    assert_eq!(
        out,
        [1, 4, 0, 2, 0, 5, 0, 0, 1, 2, b'A', b'B', b'C', 1, 4, 0, 2, 0, 0, 0, 0]
    );
    let mut out = Vec::new();
    encode_stdin(2, b"", &mut out);
    encode_abort(2, &mut out);
    assert_eq!(out, [1, 5, 0, 2, 0, 0, 0, 0, 1, 2, 0, 2, 0, 0, 0, 0]);
    let mut out = Vec::new();
    encode_get_values(&[b"FCGI_MAX_REQS"], &mut out);
    assert_eq!(&out[..8], &[1, 9, 0, 0, 0, 15, 0, 0]);
    assert_eq!(&out[8..10], &[13, 0]);
}

#[test]
fn response_decoder_rejects_front_end_records_and_bad_versions() {
    let mut d = ResponseDecoder::new();
    assert!(d.receive(&begin(1, false)).is_err());
    assert!(d.receive(b"").is_err(), "sticky");
    let mut d = ResponseDecoder::new();
    let mut bad = record(STDOUT, 1, b"x", 0);
    bad[0] = 2;
    assert!(d.receive(&bad).is_err());
    let mut d = ResponseDecoder::new();
    assert!(d.receive(&record(END_REQUEST, 1, b"short", 0)).is_err());
    let mut d = ResponseDecoder::new();
    assert!(d
        .receive(&record(GET_VALUES_RESULT, 0, b"\x05", 0))
        .is_err());
}

#[test]
fn response_decoder_handles_padding_and_splits() {
    let mut input = record(STDOUT, 1, b"abc", 5);
    input.extend(record(STDOUT, 1, b"", 2));
    input.extend(record(UNKNOWN_TYPE, 0, &[99, 0, 0, 0, 0, 0, 0, 0], 0));
    input.extend(record(END_REQUEST, 1, &[0, 0, 0, 1, 0, 0, 0, 0], 7));
    let expected = vec![
        ResponseEvent::Stdout {
            id: 1,
            data: b"abc".to_vec(),
        },
        ResponseEvent::UnknownType { record_type: 99 },
        ResponseEvent::End {
            id: 1,
            app_status: 1,
            protocol_status: 0,
        },
    ];
    for at in 0..=input.len() {
        let mut d = ResponseDecoder::new();
        d.receive(&input[..at]).unwrap();
        d.receive(&input[at..]).unwrap();
        let evs: Vec<_> = std::iter::from_fn(|| d.poll()).collect();
        assert_eq!(evs, expected, "split at {at}");
        assert_eq!(d.buffered(), 0);
    }
}

// ---------------------------------------------------------------- property tests

/// Bytes of length `len` with a cheap pattern (long values without generating each byte).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add((i as u8).wrapping_mul(31)))
        .collect()
}

fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..140),
        1 => (120usize..140, any::<u8>()).prop_map(|(n, s)| pattern(n, s)),
        1 => (65530usize..65545, any::<u8>()).prop_map(|(n, s)| pattern(n, s)),
    ]
}

#[derive(Debug, Clone)]
struct Req {
    keep_conn: bool,
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
    /// STDIN records, each sent with encode_stdin (so one larger than MAX_CONTENT splits).
    body: Vec<Vec<u8>>,
}

fn arb_req() -> impl Strategy<Value = Req> {
    (
        any::<bool>(),
        proptest::collection::vec((arb_bytes(), arb_bytes()), 0..6),
        proptest::collection::vec(
            prop_oneof![
                6 => proptest::collection::vec(any::<u8>(), 1..300),
                1 => (65530usize..65540, any::<u8>()).prop_map(|(n, s)| pattern(n, s)),
            ],
            0..4,
        ),
    )
        .prop_map(|(keep_conn, pairs, body)| Req {
            keep_conn,
            pairs,
            body,
        })
}

/// Random split sizes for feeding a byte string.
fn arb_chunks() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(
        prop_oneof![3 => 1usize..16, 2 => 16usize..5000, 1 => 5000usize..100_000],
        1..50,
    )
}

fn feed_chunked(
    c: &mut Connection,
    input: &[u8],
    chunks: &[usize],
) -> Result<Vec<Event>, ProtocolError> {
    let mut evs = Vec::new();
    let mut rest = input;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
        let (a, b) = rest.split_at(n);
        c.receive(a)?;
        evs.extend(drain(c));
        rest = b;
    }
    Ok(evs)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Requests encoded by the front-end encoders, their records interleaved in a random
    /// order and fed in random pieces, decode to the same requests.
    #[test]
    fn requests_round_trip(
        reqs in proptest::collection::vec(arb_req(), 1..4),
        schedule in proptest::collection::vec(any::<u8>(), 0..40),
        chunks in arb_chunks(),
    ) {
        // Per request, the list of record groups in order.
        let mut groups: Vec<std::collections::VecDeque<Vec<u8>>> = reqs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let id = i as u16 + 1;
                let mut g = std::collections::VecDeque::new();
                let mut b = Vec::new();
                encode_begin_request(id, RESPONDER, r.keep_conn, &mut b);
                g.push_back(b);
                let pairs: Vec<(&[u8], &[u8])> =
                    r.pairs.iter().map(|(n, v)| (&n[..], &v[..])).collect();
                let mut p = Vec::new();
                encode_params(id, &pairs, &mut p);
                g.push_back(p);
                for piece in &r.body {
                    let mut s = Vec::new();
                    encode_stdin(id, piece, &mut s);
                    g.push_back(s);
                }
                let mut s = Vec::new();
                encode_stdin(id, b"", &mut s);
                g.push_back(s);
                g
            })
            .collect();
        let mut input = Vec::new();
        let mut pick = schedule.iter().cycle();
        loop {
            let live: Vec<usize> = (0..groups.len()).filter(|&i| !groups[i].is_empty()).collect();
            if live.is_empty() {
                break;
            }
            let k = live[*pick.next().unwrap_or(&0) as usize % live.len()];
            if let Some(g) = groups[k].pop_front() {
                input.extend(g);
            }
        }

        let mut c = Connection::new(roomy(), CAPS);
        let evs = feed_chunked(&mut c, &input, &chunks).unwrap();
        prop_assert!(!c.has_output());
        for (i, r) in reqs.iter().enumerate() {
            let id = i as u16 + 1;
            let mine: Vec<&Event> = evs
                .iter()
                .filter(|e| matches!(e,
                    Event::Request { id: x, .. } | Event::Stdin { id: x, .. } |
                    Event::StdinEnd { id: x } | Event::Abort { id: x } |
                    Event::Rejected { id: x, .. } if *x == id))
                .collect();
            let mut expected_params = Params::new();
            for (n, v) in &r.pairs {
                expected_params.push(n, v);
            }
            prop_assert_eq!(mine.first().copied(), Some(&Event::Request {
                id,
                role: Role::Responder,
                params: expected_params,
            }));
            prop_assert_eq!(mine.last().copied(), Some(&Event::StdinEnd { id }));
            let mut body = Vec::new();
            for e in &mine[1..mine.len() - 1] {
                match e {
                    Event::Stdin { data, .. } => {
                        prop_assert!(!data.is_empty() && data.len() <= MAX_CONTENT);
                        body.extend_from_slice(data);
                    }
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
            prop_assert_eq!(body, r.body.concat());
        }
        prop_assert_eq!(c.active_requests(), reqs.len());
    }

    /// Arbitrary bytes, in arbitrary pieces, never panic.
    #[test]
    fn arbitrary_bytes_never_panic(
        input in proptest::collection::vec(any::<u8>(), 0..3000),
        chunks in arb_chunks(),
        max_body in proptest::option::of(0u64..2000),
    ) {
        let limits = Limits { max_params_bytes: 500, max_params: 20, max_scgi_header: 0, max_body };
        let mut c = Connection::new(limits, Capabilities { max_conns: 1, max_reqs: 3, mpxs_conns: true });
        let _ = feed_chunked(&mut c, &input, &chunks);
        let mut out = Vec::new();
        c.take_output(&mut out);
        let mut d = ResponseDecoder::new();
        prop_assert!(d.receive(&out).is_ok());
        let _ = ResponseDecoder::new().receive(&input);
    }

    /// Streams of well-formed headers with random types, ids and contents (which get much
    /// deeper into the state machine than raw bytes) never panic, and the codec's own
    /// output always decodes.
    #[test]
    fn random_records_never_panic(
        recs in proptest::collection::vec(
            (0u8..14, 0u16..4, proptest::collection::vec(any::<u8>(), 0..40), 0u8..4),
            0..60,
        ),
        chunks in arb_chunks(),
        finish_on in any::<u8>(),
    ) {
        let mut input = Vec::new();
        for (t, id, content, pad) in &recs {
            let content: Vec<u8> = if *t == BEGIN_REQUEST {
                let mut b = content.clone();
                b.resize(8, 0);
                b[0] = 0;
                b[1] %= 3;
                b
            } else {
                content.clone()
            };
            input.extend(record(*t, *id, &content, *pad));
        }
        let limits = Limits { max_params_bytes: 60, max_params: 4, max_scgi_header: 0, max_body: Some(50) };
        let mut c = Connection::new(limits, Capabilities { max_conns: 1, max_reqs: 2, mpxs_conns: finish_on & 1 == 0 });
        let mut rest = &input[..];
        let mut sizes = chunks.iter().cycle();
        while !rest.is_empty() {
            let n = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
            let (a, b) = rest.split_at(n);
            rest = b;
            if c.receive(a).is_err() {
                break;
            }
            while let Some(e) = c.poll_event() {
                if let Event::StdinEnd { id } | Event::Abort { id } | Event::Rejected { id, .. } = e {
                    if finish_on & 2 == 0 {
                        c.end(id, Outcome::Complete);
                    }
                }
            }
        }
        prop_assert!(c.active_requests() <= 2);
        let mut out = Vec::new();
        c.take_output(&mut out);
        let mut d = ResponseDecoder::new();
        prop_assert!(d.receive(&out).is_ok());
    }

    /// Output encoders round-trip through ResponseDecoder and never write a record longer
    /// than MAX_CONTENT (nor an empty STDOUT before the end).
    #[test]
    fn output_round_trips(
        id in 1u16..,
        writes in proptest::collection::vec(
            (any::<bool>(), prop_oneof![
                4 => proptest::collection::vec(any::<u8>(), 0..200),
                1 => (65530usize..140_000, any::<u8>()).prop_map(|(n, s)| pattern(n, s)),
            ]),
            0..6,
        ),
        app_status in any::<u32>(),
        chunks in arb_chunks(),
    ) {
        let mut out = Vec::new();
        for (err, data) in &writes {
            if *err {
                encode_stderr(id, data, &mut out);
            } else {
                encode_stdout(id, data, &mut out);
            }
        }
        encode_end_request(id, app_status, ProtocolStatus::RequestComplete, &mut out);

        // Walk the framing: every record is well formed, and the only empty STDOUT is the
        // one right before END_REQUEST.
        let mut pos = 0;
        let mut types = Vec::new();
        while pos < out.len() {
            let h = Header::parse(out[pos..pos + HEADER_LEN].try_into().unwrap());
            prop_assert_eq!(h.version, VERSION_1);
            prop_assert_eq!(h.request_id, id);
            prop_assert!(h.content_length as usize <= MAX_CONTENT);
            prop_assert!(h.content_length > 0 || h.record_type != STDERR);
            types.push((h.record_type, h.content_length));
            pos += HEADER_LEN + h.body_len();
        }
        prop_assert_eq!(pos, out.len());
        let n = types.len();
        prop_assert_eq!(types[n - 2], (STDOUT, 0));
        prop_assert_eq!(types[n - 1], (END_REQUEST, 8));
        prop_assert!(types[..n - 2].iter().all(|&(_, len)| len > 0));

        let mut d = ResponseDecoder::new();
        let mut rest = &out[..];
        let mut sizes = chunks.iter().cycle();
        while !rest.is_empty() {
            let k = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
            d.receive(&rest[..k]).unwrap();
            rest = &rest[k..];
        }
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let mut ended = None;
        while let Some(e) = d.poll() {
            prop_assert!(ended.is_none(), "event after End");
            match e {
                ResponseEvent::Stdout { id: x, data } if x == id => stdout.extend(data),
                ResponseEvent::Stderr { id: x, data } if x == id => stderr.extend(data),
                ResponseEvent::End { id: x, app_status: a, protocol_status: 0 } if x == id => ended = Some(a),
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        prop_assert_eq!(ended, Some(app_status));
        let want = |e: bool| writes.iter().filter(|w| w.0 == e).flat_map(|w| w.1.clone()).collect::<Vec<u8>>();
        prop_assert_eq!(stdout, want(false));
        prop_assert_eq!(stderr, want(true));
    }
}

// ---------------------------------------------------------------- end of the input

#[test]
fn eof_forgets_requests_whose_params_never_ended_and_keeps_started_ones() {
    let mut c = conn();
    // Request 1 is complete and handed on; request 2 stops inside its PARAMS stream;
    // request 3 sent only its BEGIN_REQUEST.
    let mut wire = request(1, &[(b"A", b"1")], b"");
    wire.extend(begin(2, true));
    wire.extend(record(PARAMS, 2, b"\x01\x01B", 0));
    wire.extend(begin(3, true));
    let evs = feed(&mut c, &wire).expect("valid input");
    assert!(matches!(evs[0], Event::Request { id: 1, .. }), "{evs:?}");
    assert_eq!(c.active_requests(), 3);
    assert_eq!(c.receive_eof(), 2);
    assert_eq!(c.active_requests(), 1);
    assert!(drain(&mut c).is_empty());
    assert!(!c.has_output());
    // A second EOF finds nothing more to forget; request 1 ends as usual.
    assert_eq!(c.receive_eof(), 0);
    c.end(1, Outcome::Complete);
    assert_eq!(c.active_requests(), 0);
}

#[test]
fn header_block_and_body_share_records() {
    let stdout = |out: &[u8]| -> Vec<Vec<u8>> {
        let mut d = ResponseDecoder::new();
        d.receive(out).unwrap();
        std::iter::from_fn(|| d.poll())
            .map(|e| match e {
                ResponseEvent::Stdout { data, .. } => data,
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let mut out = Vec::new();
    encode_stdout_parts(3, b"Status: 401\r\n\r\n", b"denied", &mut out);
    assert_eq!(stdout(&out), vec![b"Status: 401\r\n\r\ndenied".to_vec()]);
    // At and past one record's room.
    for extra in [0, 1, MAX_CONTENT + 5] {
        let head = vec![b'h'; 100];
        let body = vec![b'b'; MAX_CONTENT - 100 + extra];
        let mut out = Vec::new();
        encode_stdout_parts(3, &head, &body, &mut out);
        let records = stdout(&out);
        assert_eq!(records[0].len(), MAX_CONTENT);
        assert_eq!(records.len(), 1 + extra.div_ceil(MAX_CONTENT));
        assert_eq!(records.concat(), [head, body].concat());
    }
    // An empty head, and a head too long for one record.
    let mut out = Vec::new();
    encode_stdout_parts(3, b"", b"x", &mut out);
    assert_eq!(stdout(&out), vec![b"x".to_vec()]);
    let head = vec![b'h'; MAX_CONTENT + 1];
    let mut out = Vec::new();
    encode_stdout_parts(3, &head, b"x", &mut out);
    assert_eq!(stdout(&out).concat(), [&head[..], b"x"].concat());
}
