//! Captured stdout/stderr: one capped buffer per call. Writes past the cap
//! are dropped and counted — never a trap, so output volume cannot become a
//! signal about the data.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// How many bytes the guest is told it may write at once.
const WRITE_WINDOW: usize = 64 << 10;

#[derive(Clone)]
pub(crate) struct CappedPipe(Arc<Mutex<Captured>>);

struct Captured {
    bytes: Vec<u8>,
    cap: usize,
    dropped: u64,
}

impl CappedPipe {
    pub(crate) fn new(cap: usize) -> Self {
        Self(Arc::new(Mutex::new(Captured { bytes: Vec::new(), cap, dropped: 0 })))
    }

    fn append(&self, data: &[u8]) {
        let mut c = self.0.lock().expect("pipe lock");
        let take = (c.cap - c.bytes.len()).min(data.len());
        c.bytes.extend_from_slice(&data[..take]);
        c.dropped += (data.len() - take) as u64;
    }

    /// What was captured, and how many bytes were dropped past the cap.
    pub(crate) fn take(&self) -> (Vec<u8>, u64) {
        let mut c = self.0.lock().expect("pipe lock");
        (std::mem::take(&mut c.bytes), std::mem::take(&mut c.dropped))
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_WINDOW)
    }
}

impl tokio::io::AsyncWrite for CappedPipe {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_and_counts() {
        let mut p = CappedPipe::new(5);
        p.write(Bytes::from_static(b"abc")).unwrap();
        p.write(Bytes::from_static(b"defgh")).unwrap();
        assert_eq!(p.check_write().unwrap(), WRITE_WINDOW);
        assert_eq!(p.take(), (b"abcde".to_vec(), 3));
    }
}
