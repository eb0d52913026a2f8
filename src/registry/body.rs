//! Request bodies that can take one of two roads: through wasm as a stream of chunks
//! (hashed by us, the state saved between requests), or handed untouched to storage, which
//! hashes and stores them natively. The native road keeps blob bytes out of wasm entirely.

use super::ByteStream;

/// A request body. `N` is the store's native body (a JavaScript stream on Workers).
pub struct RequestBody<N> {
    source: Source<N>,
    length: Option<u64>,
}

type ToStream<N> = Box<dyn FnOnce(N) -> ByteStream>;

enum Source<N> {
    Native(N, ToStream<N>),
    Stream(ByteStream),
}

impl<N> RequestBody<N> {
    /// A body that can only be read as a stream.
    pub fn stream(stream: ByteStream, length: Option<u64>) -> Self {
        RequestBody { source: Source::Stream(stream), length }
    }

    /// A body the store can take natively; `to_stream` reads it through wasm instead.
    pub fn native(body: N, length: Option<u64>, to_stream: impl FnOnce(N) -> ByteStream + 'static) -> Self {
        RequestBody { source: Source::Native(body, Box::new(to_stream)), length }
    }

    /// Wraps the stream this body becomes if it is read through wasm.
    pub fn map_stream(self, wrap: impl FnOnce(ByteStream) -> ByteStream + 'static) -> Self
    where
        N: 'static,
    {
        let source = match self.source {
            Source::Native(body, to_stream) => Source::Native(body, Box::new(move |n| wrap(to_stream(n)))),
            Source::Stream(stream) => Source::Stream(wrap(stream)),
        };
        RequestBody { source, length: self.length }
    }

    /// The declared length (`Content-Length`), if any.
    pub fn length(&self) -> Option<u64> {
        self.length
    }

    /// Reads the body through wasm.
    pub fn into_stream(self) -> ByteStream {
        match self.source {
            Source::Native(body, to_stream) => to_stream(body),
            Source::Stream(stream) => stream,
        }
    }

    /// What `take` makes of the native body and its declared length, if this body can be
    /// taken natively and `take` accepts it (it hands the body back when it does not);
    /// the body back otherwise.
    pub fn into_native_with<T>(self, take: impl FnOnce(N, Option<u64>) -> Result<T, N>) -> Result<T, Self> {
        match self.source {
            Source::Native(body, to_stream) => match take(body, self.length) {
                Ok(taken) => Ok(taken),
                Err(body) => Err(RequestBody { source: Source::Native(body, to_stream), length: self.length }),
            },
            source => Err(RequestBody { source, length: self.length }),
        }
    }

    /// The native body and its length, when both are available and the length is at most
    /// `max` (what the store takes in one put); the body back otherwise.
    pub fn into_native(self, max: u64) -> Result<(N, u64), Self> {
        match (self.source, self.length) {
            (Source::Native(body, _), Some(length)) if length <= max => Ok((body, length)),
            (source, length) => Err(RequestBody { source, length }),
        }
    }
}
