//! Tests of the SCGI codec: the spec's example, every split of the input, every rule of
//! SCGI §3/§4, every limit at and past its boundary, end-of-stream handling, and a
//! property test that `encode_request` round-trips through `Connection`.

use super::*;
use proptest::prelude::*;

/// The request of SCGI §5, byte for byte.
const SPEC_EXAMPLE: &[u8] = b"70:CONTENT_LENGTH\x0027\x00SCGI\x001\x00REQUEST_METHOD\x00POST\x00REQUEST_URI\x00/deepthought\x00,What is the answer to life?";

fn limits() -> Limits {
    Limits::default()
}

/// Decodes `input` fed in pieces of `chunk` bytes; returns the events, with adjacent body
/// chunks merged, and the first error.
fn decode_chunked(
    input: &[u8],
    chunk: usize,
    limits: Limits,
) -> (Vec<Event>, Result<(), ScgiError>) {
    let mut conn = Connection::new(limits);
    let mut events = Vec::new();
    let mut result = Ok(());
    for piece in input.chunks(chunk.max(1)) {
        result = conn.receive(piece);
        while let Some(ev) = conn.poll_event() {
            push_merged(&mut events, ev);
        }
        if result.is_err() {
            break;
        }
    }
    (events, result)
}

fn push_merged(events: &mut Vec<Event>, ev: Event) {
    if let (Some(Event::Body(prev)), Event::Body(more)) = (events.last_mut(), &ev) {
        prev.extend_from_slice(more);
        return;
    }
    events.push(ev);
}

fn decode(input: &[u8], limits: Limits) -> (Vec<Event>, Result<(), ScgiError>) {
    decode_chunked(input, input.len(), limits)
}

fn err_of(input: &[u8], limits: Limits) -> ScgiError {
    let (_, r) = decode(input, limits);
    r.expect_err("input must be refused")
}

fn params_of(pairs: &[(&[u8], &[u8])]) -> Params {
    let mut p = Params::new();
    for (n, v) in pairs {
        p.push(n, v);
    }
    p
}

/// A netstring around `header`.
fn netstring(header: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:", header.len()).into_bytes();
    out.extend_from_slice(header);
    out.push(b',');
    out
}

fn spec_example_events() -> Vec<Event> {
    vec![
        Event::Request {
            params: params_of(&[
                (b"CONTENT_LENGTH", b"27"),
                (b"SCGI", b"1"),
                (b"REQUEST_METHOD", b"POST"),
                (b"REQUEST_URI", b"/deepthought"),
            ]),
            content_length: 27,
        },
        Event::Body(b"What is the answer to life?".to_vec()),
        Event::BodyEnd,
    ]
}

#[test]
fn spec_example_in_one_piece() {
    let (events, r) = decode(SPEC_EXAMPLE, limits());
    assert_eq!(r, Ok(()));
    assert_eq!(events, spec_example_events());
}

#[test]
fn spec_example_byte_at_a_time_and_every_chunk_size() {
    for chunk in 1..=SPEC_EXAMPLE.len() {
        let (events, r) = decode_chunked(SPEC_EXAMPLE, chunk, limits());
        assert_eq!(r, Ok(()), "chunk {chunk}");
        assert_eq!(events, spec_example_events(), "chunk {chunk}");
    }
}

#[test]
fn spec_example_split_at_every_point() {
    for at in 0..=SPEC_EXAMPLE.len() {
        let mut conn = Connection::new(limits());
        conn.receive(&SPEC_EXAMPLE[..at]).unwrap();
        conn.receive(&SPEC_EXAMPLE[at..]).unwrap();
        let mut events = Vec::new();
        while let Some(ev) = conn.poll_event() {
            push_merged(&mut events, ev);
        }
        assert_eq!(events, spec_example_events(), "split at {at}");
        assert_eq!(conn.receive_eof(), Ok(()));
    }
}

#[test]
fn body_chunks_never_pass_content_length_and_extra_bytes_are_ignored() {
    let mut input = Vec::new();
    encode_request(&[(b"REQUEST_METHOD", b"POST")], b"hello", &mut input);
    input.extend_from_slice(b"EXTRA BYTES");
    for chunk in 1..=input.len() {
        let (events, r) = decode_chunked(&input, chunk, limits());
        assert_eq!(r, Ok(()));
        assert_eq!(events.len(), 3);
        assert_eq!(events[1], Event::Body(b"hello".to_vec()));
        assert_eq!(events[2], Event::BodyEnd);
    }
}

#[test]
fn zero_length_body_ends_right_after_the_request() {
    let mut input = Vec::new();
    encode_request(&[(b"REQUEST_METHOD", b"GET")], b"", &mut input);
    let mut conn = Connection::new(limits());
    conn.receive(&input).unwrap();
    assert!(matches!(
        conn.poll_event(),
        Some(Event::Request {
            content_length: 0,
            ..
        })
    ));
    assert_eq!(conn.poll_event(), Some(Event::BodyEnd));
    assert_eq!(conn.poll_event(), None);
    assert_eq!(conn.receive(b"ignored"), Ok(()));
    assert_eq!(conn.poll_event(), None);
    assert_eq!(conn.receive_eof(), Ok(()));
}

#[test]
fn repeated_names_are_kept_in_order() {
    // nginx sends a repeated request header as a repeated param.
    let header =
        b"CONTENT_LENGTH\x000\x00HTTP_COOKIE\x00a=1\x00SCGI\x001\x00HTTP_COOKIE\x00b=2\x00";
    let (events, r) = decode(&netstring(header), limits());
    assert_eq!(r, Ok(()));
    let Some(Event::Request { params, .. }) = events.first() else {
        panic!("no request: {events:?}");
    };
    let all: Vec<_> = params.iter().collect();
    assert_eq!(all[1], (&b"HTTP_COOKIE"[..], &b"a=1"[..]));
    assert_eq!(all[3], (&b"HTTP_COOKIE"[..], &b"b=2"[..]));
}

#[test]
fn bytes_0x01_to_0xff_pass_through_untouched() {
    let value: Vec<u8> = (1..=255u8).collect();
    let mut input = Vec::new();
    encode_request(&[(b"X\xe9\xff", &value)], b"\x00\xff", &mut input);
    let (events, r) = decode(&input, limits());
    assert_eq!(r, Ok(()));
    let Some(Event::Request { params, .. }) = events.first() else {
        panic!("no request");
    };
    assert_eq!(params.get(b"X\xe9\xff"), Some(&value[..]));
    assert_eq!(events[1], Event::Body(b"\x00\xff".to_vec()));
}

#[test]
fn scgi_header_may_be_absent_but_must_be_1_when_present() {
    let ok = netstring(b"CONTENT_LENGTH\x000\x00REQUEST_METHOD\x00GET\x00");
    assert_eq!(decode(&ok, limits()).1, Ok(()));
    for bad in [&b"0"[..], b"", b"11", b"2"] {
        let mut header = b"CONTENT_LENGTH\x000\x00SCGI\x00".to_vec();
        header.extend_from_slice(bad);
        header.push(0);
        assert_eq!(
            err_of(&netstring(&header), limits()),
            ScgiError::Malformed("SCGI header is not \"1\"")
        );
    }
}

/// An HTTP client pointed at the SCGI port is a distinct error, whose reply tells it to put
/// a web server in front; in any split. Upper-case letters not followed by a space are
/// still a malformed netstring.
#[test]
fn http_request_on_the_scgi_port_is_recognised() {
    let get = b"GET / HTTP/1.1\r\nHost: localhost:4000\r\n\r\n";
    for chunk in [1, 2, 3, 4, get.len()] {
        let (events, r) = decode_chunked(get, chunk, limits());
        assert_eq!(r, Err(ScgiError::Http), "chunk {chunk}");
        assert!(events.is_empty());
    }
    let e = err_of(b"PROPFIND /dav HTTP/1.1\r\n", limits());
    assert_eq!(e.http_reply(), Some(crate::protocol::NOT_HTTP_SCGI));
    assert_eq!(e.status(), "400 Bad Request");
    assert!(e.to_string().contains("web server"), "{e}");
    for not_http in [
        &b"GET:"[..],
        b"GET/",
        b"G1:",
        b"VERYLONGMETHODNAMEX / HTTP/1.1",
    ] {
        assert_eq!(
            err_of(not_http, limits()),
            ScgiError::Malformed("netstring length is not a decimal number"),
            "{:?}",
            String::from_utf8_lossy(not_http)
        );
    }
    assert_eq!(ScgiError::Malformed("x").http_reply(), None);
    let mut c = Connection::new(limits());
    assert_eq!(c.receive(b"GE"), Ok(()));
    assert_eq!(
        c.receive_eof(),
        Err(ScgiError::Malformed("connection closed inside the header"))
    );
}

#[test]
fn malformed_netstrings() {
    let cases: &[(&[u8], &str)] = &[
        (b":", "empty netstring length"),
        (b"x", "netstring length is not a decimal number"),
        (b"1x", "netstring length is not a decimal number"),
        (b" 1:", "netstring length is not a decimal number"),
        (b"-1:", "netstring length is not a decimal number"),
        (b"01:", "leading zero in the netstring length"),
        (b"00:", "leading zero in the netstring length"),
        (b"0:,", "no CONTENT_LENGTH header"),
        (b"0:x", "netstring not terminated by ','"),
        (
            b"24:CONTENT_LENGTH\x000\x00SCGI\x001\x00;",
            "netstring not terminated by ','",
        ),
    ];
    for (input, why) in cases {
        assert_eq!(
            err_of(input, limits()),
            ScgiError::Malformed(why),
            "{:?}",
            String::from_utf8_lossy(input)
        );
        // The same verdict byte by byte (the missing comma case included).
        let (_, r) = decode_chunked(input, 1, limits());
        assert_eq!(r, Err(ScgiError::Malformed(why)));
    }
}

#[test]
fn malformed_headers() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"SCGI\x001\x00CONTENT_LENGTH\x000\x00",
            "first header is not CONTENT_LENGTH",
        ),
        (
            b"CONTENT_LENGTH\x00\x00",
            "CONTENT_LENGTH is not a decimal number",
        ),
        (
            b"CONTENT_LENGTH\x00-1\x00",
            "CONTENT_LENGTH is not a decimal number",
        ),
        (
            b"CONTENT_LENGTH\x00 1\x00",
            "CONTENT_LENGTH is not a decimal number",
        ),
        (
            b"CONTENT_LENGTH\x001a\x00",
            "CONTENT_LENGTH is not a decimal number",
        ),
        (
            b"CONTENT_LENGTH\x0018446744073709551616\x00",
            "CONTENT_LENGTH is not a decimal number",
        ),
        (
            b"CONTENT_LENGTH\x000\x00CONTENT_LENGTH\x000\x00",
            "repeated CONTENT_LENGTH header",
        ),
        (b"CONTENT_LENGTH\x000\x00\x00v\x00", "empty header name"),
        (
            b"CONTENT_LENGTH\x000\x00NAME",
            "header name not terminated by NUL",
        ),
        (
            b"CONTENT_LENGTH\x000\x00NAME\x00value",
            "header value not terminated by NUL",
        ),
        (b"CONTENT_LENGTH\x000", "header value not terminated by NUL"),
        (b"SCGI\x001\x00", "first header is not CONTENT_LENGTH"),
    ];
    for (header, why) in cases {
        let input = netstring(header);
        assert_eq!(
            err_of(&input, limits()),
            ScgiError::Malformed(why),
            "{:?}",
            String::from_utf8_lossy(header)
        );
        let (_, r) = decode_chunked(&input, 1, limits());
        assert_eq!(r, Err(ScgiError::Malformed(why)));
    }
}

#[test]
fn content_length_with_leading_zeros_is_decimal() {
    let input = netstring(b"CONTENT_LENGTH\x00007\x00");
    let (events, r) = decode(&[&input[..], b"1234567"].concat(), limits());
    assert_eq!(r, Ok(()));
    assert!(matches!(
        events[0],
        Event::Request {
            content_length: 7,
            ..
        }
    ));
    assert_eq!(events[1], Event::Body(b"1234567".to_vec()));
}

#[test]
fn max_scgi_header_at_and_past_the_boundary() {
    let header = b"CONTENT_LENGTH\x000\x00SCGI\x001\x00";
    let input = netstring(header);
    let at = Limits {
        max_scgi_header: header.len(),
        ..limits()
    };
    assert_eq!(decode(&input, at).1, Ok(()));
    let past = Limits {
        max_scgi_header: header.len() - 1,
        ..limits()
    };
    assert_eq!(
        err_of(&input, past),
        ScgiError::Limit(LimitKind::ScgiHeader)
    );
}

#[test]
fn max_scgi_header_is_checked_digit_by_digit() {
    // With the default limit (262144) the 6th digit of 999999 is refused: the rest of the
    // input is never looked at.
    let mut conn = Connection::new(limits());
    assert_eq!(conn.receive(b"99999"), Ok(()));
    assert_eq!(
        conn.receive(b"9"),
        Err(ScgiError::Limit(LimitKind::ScgiHeader))
    );
    assert_eq!(
        conn.receive(b"9:"),
        Err(ScgiError::Limit(LimitKind::ScgiHeader))
    );
    let mut conn = Connection::new(limits());
    assert_eq!(
        conn.receive(&[b'9'; 100_000]),
        Err(ScgiError::Limit(LimitKind::ScgiHeader))
    );
}

#[test]
fn more_than_twenty_length_digits_are_malformed_even_without_a_limit() {
    let unlimited = Limits {
        max_scgi_header: usize::MAX,
        ..limits()
    };
    let mut conn = Connection::new(unlimited);
    // 20 ones fit nowhere but are still counted; the 21st digit is refused.
    let r = conn.receive(&[b'1'; 21]);
    assert!(
        matches!(
            r,
            Err(ScgiError::Malformed("netstring length has too many digits"))
                | Err(ScgiError::Limit(LimitKind::ScgiHeader))
        ),
        "{r:?}"
    );
    let mut conn = Connection::new(unlimited);
    assert_eq!(
        conn.receive(&[b'0'; 1]).and_then(|_| conn.receive(b"0")),
        Err(ScgiError::Malformed("leading zero in the netstring length"))
    );
}

#[test]
fn max_params_at_and_past_the_boundary() {
    // CONTENT_LENGTH, SCGI and three more: five params.
    let mut input = Vec::new();
    encode_request(&[(b"A", b"1"), (b"B", b"2"), (b"C", b"3")], b"", &mut input);
    let at = Limits {
        max_params: 5,
        ..limits()
    };
    assert_eq!(decode(&input, at).1, Ok(()));
    let past = Limits {
        max_params: 4,
        ..limits()
    };
    assert_eq!(
        err_of(&input, past),
        ScgiError::Limit(LimitKind::ParamsCount)
    );
}

#[test]
fn max_params_bytes_at_and_past_the_boundary() {
    let mut input = Vec::new();
    encode_request(&[(b"NAME", b"value")], b"", &mut input);
    // CONTENT_LENGTH0 + SCGI1 + NAMEvalue, NULs not counted.
    let bytes = 15 + 5 + 9;
    let at = Limits {
        max_params_bytes: bytes,
        ..limits()
    };
    assert_eq!(decode(&input, at).1, Ok(()));
    let past = Limits {
        max_params_bytes: bytes - 1,
        ..limits()
    };
    assert_eq!(
        err_of(&input, past),
        ScgiError::Limit(LimitKind::ParamsBytes)
    );
}

#[test]
fn max_body_at_and_past_the_boundary() {
    let mut input = Vec::new();
    encode_request(&[], b"0123456789", &mut input);
    let at = Limits {
        max_body: Some(10),
        ..limits()
    };
    let (events, r) = decode(&input, at);
    assert_eq!(r, Ok(()));
    assert_eq!(events.last(), Some(&Event::BodyEnd));
    let past = Limits {
        max_body: Some(9),
        ..limits()
    };
    let (events, r) = decode(&input, past);
    assert_eq!(r, Err(ScgiError::Limit(LimitKind::Body)));
    assert!(
        events.is_empty(),
        "no Request event for a refused body: {events:?}"
    );
}

#[test]
fn an_error_is_final() {
    let mut conn = Connection::new(limits());
    let e = conn.receive(b"x").unwrap_err();
    assert_eq!(conn.receive(SPEC_EXAMPLE), Err(e.clone()));
    assert_eq!(conn.receive(b""), Err(e.clone()));
    assert_eq!(conn.poll_event(), None);
    assert_eq!(conn.receive_eof(), Err(e));
}

#[test]
fn eof_handling() {
    // Nothing sent: harmless (Apache mod_proxy_scgi does this before answering 411).
    let mut conn = Connection::new(limits());
    assert!(conn.is_pristine());
    conn.receive(b"").unwrap();
    assert!(conn.is_pristine());
    assert_eq!(conn.receive_eof(), Ok(()));

    // Cut inside the length, the header, before the comma, and inside the body.
    let complete_header = SPEC_EXAMPLE.len() - 27;
    for cut in [
        1,
        3,
        20,
        complete_header - 1,
        complete_header,
        SPEC_EXAMPLE.len() - 1,
    ] {
        let mut conn = Connection::new(limits());
        conn.receive(&SPEC_EXAMPLE[..cut]).unwrap();
        assert!(!conn.is_pristine());
        let r = conn.receive_eof();
        assert!(
            matches!(r, Err(ScgiError::Malformed(_))),
            "cut at {cut}: {r:?}"
        );
        // Stays failed.
        assert_eq!(conn.receive(b"x"), r);
    }
    let mut conn = Connection::new(limits());
    conn.receive(&SPEC_EXAMPLE[..complete_header - 1]).unwrap();
    assert_eq!(
        conn.receive_eof(),
        Err(ScgiError::Malformed("connection closed inside the header"))
    );
    let mut conn = Connection::new(limits());
    conn.receive(&SPEC_EXAMPLE[..complete_header]).unwrap();
    assert_eq!(
        conn.receive_eof(),
        Err(ScgiError::Malformed(
            "connection closed before the end of the body"
        ))
    );

    // Complete request.
    let mut conn = Connection::new(limits());
    conn.receive(SPEC_EXAMPLE).unwrap();
    assert_eq!(conn.receive_eof(), Ok(()));
}

#[test]
fn status_lines() {
    assert_eq!(ScgiError::Malformed("x").status(), "400 Bad Request");
    assert_eq!(
        ScgiError::Limit(LimitKind::ScgiHeader).status(),
        "431 Request Header Fields Too Large"
    );
    assert_eq!(
        ScgiError::Limit(LimitKind::Body).status(),
        "413 Content Too Large"
    );
    assert!(ScgiError::Limit(LimitKind::Body)
        .to_string()
        .contains("max_body"));
}

#[test]
fn encode_request_matches_the_spec_example_layout() {
    let mut out = Vec::new();
    encode_request(
        &[
            (b"REQUEST_METHOD", b"POST"),
            (b"SCGI", b"ignored"),
            (b"CONTENT_LENGTH", b"ignored"),
            (b"REQUEST_URI", b"/deepthought"),
        ],
        b"What is the answer to life?",
        &mut out,
    );
    assert_eq!(out, SPEC_EXAMPLE);
}

fn name_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(1u8..=255, 1..12).prop_filter("reserved", |n| {
        n.as_slice() != CONTENT_LENGTH && n.as_slice() != SCGI
    })
}

proptest! {
    #[test]
    fn encode_then_decode_round_trips(
        pairs in prop::collection::vec((name_strategy(), prop::collection::vec(1u8..=255, 0..20)), 0..12),
        body in prop::collection::vec(any::<u8>(), 0..300),
        chunk in 1usize..64,
        trailing in prop::collection::vec(any::<u8>(), 0..8),
    ) {
        let borrowed: Vec<(&[u8], &[u8])> = pairs.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        let mut input = Vec::new();
        encode_request(&borrowed, &body, &mut input);
        input.extend_from_slice(&trailing);
        let (events, r) = decode_chunked(&input, chunk, limits());
        prop_assert_eq!(r, Ok(()));
        let mut expected = Params::new();
        expected.push(CONTENT_LENGTH, body.len().to_string().as_bytes());
        expected.push(SCGI, b"1");
        for (n, v) in &borrowed {
            expected.push(n, v);
        }
        let mut want = vec![Event::Request { params: expected, content_length: body.len() as u64 }];
        if !body.is_empty() {
            want.push(Event::Body(body.clone()));
        }
        want.push(Event::BodyEnd);
        prop_assert_eq!(events, want);
    }

    #[test]
    fn arbitrary_input_never_panics_and_bodies_stay_bounded(
        input in prop::collection::vec(any::<u8>(), 0..200),
        chunk in 1usize..16,
    ) {
        let mut conn = Connection::new(limits());
        let mut declared = None;
        let mut body = 0u64;
        for piece in input.chunks(chunk) {
            let r = conn.receive(piece);
            while let Some(ev) = conn.poll_event() {
                match ev {
                    Event::Request { content_length, .. } => declared = Some(content_length),
                    Event::Body(b) => body += b.len() as u64,
                    Event::BodyEnd => prop_assert_eq!(Some(body), declared),
                }
            }
            if r.is_err() {
                break;
            }
        }
        prop_assert!(body <= declared.unwrap_or(0));
        let _ = conn.receive_eof();
    }
}

#[test]
fn every_request_ends_its_connection() {
    // SCGI §2: one request per connection, so the connection closes after it; a broken
    // response is cut off at once, the only way SCGI can tell it is incomplete.
    let mut c = Connection::new(Limits::default());
    assert_eq!(c.end(Outcome::Complete), Next::Close);
    assert_eq!(c.end(Outcome::Broken), Next::CloseHard);
}
