//! The request lifecycle both gateway protocols share, as the codecs apply it: which role a
//! request plays, how it ended on the application side, and what the connection does next.
//!
//! The rules themselves live with each codec: FastCGI keeps a connection open after a
//! request only when its BEGIN_REQUEST asked for it (FCGI_KEEP_CONN, FastCGI §5.1), ends a
//! request aborted before its params were complete with an END_REQUEST of its own (§5.4),
//! and ends a broken response with appStatus 1 when other requests share the connection;
//! SCGI carries one request per connection (SCGI §3), so every request ends it. The worker
//! asks the codec through [`Outcome`] and acts on the [`Next`] it gets, never on a protocol
//! flag of its own.

/// The role of a request (FastCGI §6). SCGI requests are all responders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// FastCGI §6.2: the request is answered with a response (every SCGI request).
    Responder,
    /// FastCGI §6.3: the front end asks whether a request may pass. There is no body; a
    /// 200 answer grants access (its `Variable-NAME` headers go with the request), any
    /// other answer is the denial the client gets.
    Authorizer,
}

impl Role {
    /// The value of `environ["wsgid.role"]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Responder => "responder",
            Role::Authorizer => "authorizer",
        }
    }
}

/// How a request's response ended, as the application side saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The whole response, its end included (FastCGI's END_REQUEST, written with the last
    /// output), is in the caller's write buffer.
    Complete,
    /// The response broke off (the app raised after sending headers, or the request was
    /// aborted mid-response): the front end must not take what it got for a whole answer.
    Broken,
}

/// What the connection does once a request on it has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Stay open for further requests.
    Keep,
    /// Close once the write buffer is flushed and no request is left, with a lingering
    /// close so a front end still sending sees no reset.
    Close,
    /// Close at once after flushing, without lingering: the response must look broken to
    /// the front end (a truncated answer it would otherwise pass on as whole).
    CloseHard,
}
