//! One write for a quick answer: a POST's event stream gathered before its headers go out.
//!
//! rmcp answers every POST that carries a JSON-RPC request with a `text/event-stream`
//! response (MCP 2025-11-25, "Streamable HTTP": the server may stream notifications
//! before the response) and returns that response before the handler has produced
//! anything, so hyper writes the headers alone, then each event as a chunk, then the
//! chunked body's end: three `writev` calls and three TCP segments for one tool call
//! in stateless mode, two in session mode (headers and the priming event, then the
//! response and the end). Each segment wakes the client and costs the server a trip
//! through the TCP stack; on loopback that was the larger part of the server's kernel
//! time per call (bench/README.md, "Against a bare rmcp server").
//!
//! [`gather`] waits for the stream's events for at most a short window. A stream that
//! ends within it (every quick call: its events, then the end) is sent as one body
//! with a `Content-Length` — headers and body in one write. One that does not (a long
//! call, a call that asks the client something and waits for the answer) is sent as
//! it comes, its first events at the end of the window: nothing is held longer than
//! the window, so a server-to-client request never waits on its own answer. The events
//! and their bytes are the same either way; only the HTTP framing differs (RFC 9112
//! §6: length-delimited rather than chunked), which no event-stream reader can tell.

use std::{
    collections::VecDeque,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    response::Response,
};
use http::{StatusCode, header};
use hyper::body::{Body as _, Frame, SizeHint};

/// How long [`gather`] waits for an event stream to end before sending it as it comes.
/// Long enough for a quick call under load (p99 at saturation is under 10 ms on the
/// benchmark machine), short enough that a progress notification or a server-to-client
/// request is not noticeably late.
pub(crate) const WINDOW: Duration = Duration::from_millis(20);

/// `response` with its event stream gathered into one body when the stream ends within
/// `window`, or else as it comes (what arrived within `window` first). Responses that
/// are not a successful `text/event-stream` are returned unchanged and at once.
pub(crate) async fn gather(response: Response, window: Duration) -> Response {
    if !is_event_stream(&response) {
        return response;
    }
    let (parts, mut body) = response.into_parts();
    let deadline = tokio::time::sleep(window);
    tokio::pin!(deadline);
    // The data so far, as one buffer (it is sent as one).
    let mut gathered: Option<Bytes> = None;
    // What ends the gathering with the stream still open: a frame that is not data
    // (trailers, an error), or the end of the window (`None`).
    let after = loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx));
        tokio::select! {
            biased;
            frame = frame => match frame {
                None => return Response::from_parts(parts, Body::from(gathered.unwrap_or_default())),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        gathered = Some(match gathered {
                            None => data,
                            Some(before) => [before, data].concat().into(),
                        });
                    }
                    Err(frame) => break Some(Ok(frame)),
                },
                Some(Err(error)) => break Some(Err(error)),
            },
            () = &mut deadline => break None,
        }
    };
    let frames = gathered.filter(|data| !data.is_empty()).map(|data| Ok(Frame::data(data))).into_iter().chain(after);
    Response::from_parts(parts, Body::new(Replayed { frames: frames.collect(), rest: body }))
}

fn is_event_stream(response: &Response) -> bool {
    response.status() == StatusCode::OK
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"))
}

/// Frames already taken from `rest`, yielded before it.
struct Replayed {
    frames: VecDeque<Result<Frame<Bytes>, axum::Error>>,
    rest: Body,
}

impl hyper::body::Body for Replayed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.frames.pop_front() {
            Some(frame) => Poll::Ready(Some(frame)),
            None => Pin::new(&mut self.rest).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // Unknown: the rest may be anything (so hyper sends it chunked, as before).
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use std::convert::Infallible;

    use futures::StreamExt as _;
    use tokio::sync::mpsc;

    use super::*;

    /// An event-stream response whose chunks are sent through the returned channel.
    fn streamed() -> (mpsc::Sender<Result<Bytes, Infallible>>, Response) {
        let (sender, receiver) = mpsc::channel(8);
        let response = Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(Body::from_stream(futures::stream::unfold(receiver, |mut receiver| async move {
                receiver.recv().await.map(|chunk| (chunk, receiver))
            })))
            .expect("response");
        (sender, response)
    }

    async fn text(body: Body) -> String {
        let bytes = axum::body::to_bytes(body, usize::MAX).await.expect("body");
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn a_stream_that_ends_within_the_window_becomes_one_body_of_known_length() {
        let (sender, response) = streamed();
        tokio::spawn(async move {
            for event in ["data: \nid: 0/1\nretry: 3000\n\n", "data: {\"id\":2}\n\n"] {
                tokio::time::sleep(Duration::from_millis(2)).await;
                sender.send(Ok(Bytes::from(event))).await.expect("send");
            }
        });
        let response = gather(response, Duration::from_secs(5)).await;
        let expected = "data: \nid: 0/1\nretry: 3000\n\ndata: {\"id\":2}\n\n";
        assert_eq!(response.body().size_hint().exact(), Some(expected.len() as u64));
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream");
        assert_eq!(text(response.into_body()).await, expected);
    }

    #[tokio::test]
    async fn a_stream_still_open_at_the_end_of_the_window_is_sent_as_it_comes() {
        let (sender, response) = streamed();
        sender.send(Ok(Bytes::from("data: first\n\n"))).await.expect("send");
        let started = tokio::time::Instant::now();
        // Returned at the end of the window, while the stream is still open: a client
        // waiting for this response's first event is not kept waiting for the last.
        let response = tokio::time::timeout(Duration::from_secs(5), gather(response, Duration::from_millis(50)))
            .await
            .expect("gather returns when the window ends");
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(response.body().size_hint().exact(), None);
        let mut body = response.into_body().into_data_stream();
        assert_eq!(body.next().await.expect("first").expect("data"), "data: first\n\n");
        sender.send(Ok(Bytes::from("data: second\n\n"))).await.expect("send");
        assert_eq!(body.next().await.expect("second").expect("data"), "data: second\n\n");
        drop(sender);
        assert!(body.next().await.is_none());
    }

    #[tokio::test]
    async fn other_responses_are_returned_at_once_and_unchanged() {
        let (_sender, mut response) = streamed();
        *response.status_mut() = StatusCode::ACCEPTED;
        let response = tokio::time::timeout(Duration::from_secs(1), gather(response, Duration::from_secs(60)))
            .await
            .expect("not gathered");
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let json = Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from_stream(futures::stream::pending::<Result<Bytes, Infallible>>()))
            .expect("response");
        let json = tokio::time::timeout(Duration::from_secs(1), gather(json, Duration::from_secs(60)))
            .await
            .expect("not gathered");
        assert_eq!(json.body().size_hint().exact(), None);
    }

    #[tokio::test]
    async fn an_error_in_the_stream_reaches_the_client_after_what_came_before() {
        let stream =
            futures::stream::iter([Ok(Bytes::from("data: one\n\n")), Err(std::io::Error::other("worker gone"))]);
        let response = Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(Body::from_stream(stream))
            .expect("response");
        let mut body = gather(response, Duration::from_secs(5)).await.into_body().into_data_stream();
        assert_eq!(body.next().await.expect("first").expect("data"), "data: one\n\n");
        assert!(body.next().await.expect("second").is_err());
    }
}
