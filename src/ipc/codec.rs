//! Framing of the multipathd control socket, both directions: a native
//! `size_t` length that counts a trailing NUL, then the bytes with that NUL.
//!
//! Async versions serve the daemon; blocking versions serve the clients.

use std::io::{self, Read, Write};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Longest command multipathd accepts, counting the NUL.
pub const MAX_CMD_LEN: usize = 512;
/// Replies must be shorter than this (libmpathcmd rejects longer ones).
pub const MAX_REPLY_LEN: usize = 32 * 1024 * 1024;
/// Size of the length prefix (`size_t`).
pub const LEN_SIZE: usize = std::mem::size_of::<usize>();

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection before a new frame started.
    #[error("connection closed")]
    Closed,
    /// Length 0 or above the limit.
    #[error("invalid frame length {len} (limit {max})")]
    BadLength { len: usize, max: usize },
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Check a received length against a limit (`len` counts the NUL).
pub fn check_len(len: usize, max: usize) -> Result<usize, FrameError> {
    if len == 0 || len > max {
        Err(FrameError::BadLength { len, max })
    } else {
        Ok(len)
    }
}

/// The text of a frame body: up to the first NUL, invalid UTF-8 replaced.
pub fn body_text(body: &[u8]) -> String {
    let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
    String::from_utf8_lossy(body.get(..end).unwrap_or_default()).into_owned()
}

/// Encode `text` as one frame (length, bytes, NUL).
pub fn encode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(LEN_SIZE + text.len() + 1);
    out.extend_from_slice(&(text.len() + 1).to_ne_bytes());
    out.extend_from_slice(text.as_bytes());
    out.push(0);
    out
}

/// Read a length prefix. `Closed` when the peer hung up before sending
/// any byte of it.
pub async fn read_len<R: AsyncRead + Unpin>(r: &mut R) -> Result<usize, FrameError> {
    let mut buf = [0u8; LEN_SIZE];
    let mut got = 0;
    while got < LEN_SIZE {
        let n = r.read(&mut buf[got..]).await?;
        if n == 0 {
            return Err(if got == 0 {
                FrameError::Closed
            } else {
                FrameError::Truncated
            });
        }
        got += n;
    }
    Ok(usize::from_ne_bytes(buf))
}

/// The rest of a length prefix whose first byte was read already.
pub async fn read_len_after<R: AsyncRead + Unpin>(
    first: u8,
    r: &mut R,
) -> Result<usize, FrameError> {
    let mut buf = [0u8; LEN_SIZE];
    buf[0] = first;
    r.read_exact(&mut buf[1..])
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => FrameError::Truncated,
            _ => FrameError::Io(e),
        })?;
    Ok(usize::from_ne_bytes(buf))
}

/// Read a frame body of `len` bytes and return its text.
pub async fn read_body<R: AsyncRead + Unpin>(r: &mut R, len: usize) -> Result<String, FrameError> {
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    Ok(body_text(&body))
}

/// Read one whole frame whose length may not exceed `max`.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<String, FrameError> {
    let len = check_len(read_len(r).await?, max)?;
    read_body(r, len).await
}

/// Write one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, text: &str) -> io::Result<()> {
    w.write_all(&encode(text)).await?;
    w.flush().await
}

/// Blocking read of one frame (clients). Socket timeouts surface as
/// [`FrameError::Timeout`].
pub fn read_frame_blocking<R: Read>(r: &mut R, max: usize) -> Result<String, FrameError> {
    let map = |e: io::Error| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => FrameError::Timeout,
        io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    };
    let mut buf = [0u8; LEN_SIZE];
    let mut got = 0;
    while got < LEN_SIZE {
        match r.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(if got == 0 {
                    FrameError::Closed
                } else {
                    FrameError::Truncated
                })
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(map(e)),
        }
    }
    let len = check_len(usize::from_ne_bytes(buf), max)?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).map_err(map)?;
    Ok(body_text(&body))
}

/// Blocking write of one frame (clients).
pub fn write_frame_blocking<W: Write>(w: &mut W, text: &str) -> io::Result<()> {
    w.write_all(&encode(text))?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_blocking() {
        let mut buf = Vec::new();
        write_frame_blocking(&mut buf, "show maps").expect("write");
        write_frame_blocking(&mut buf, "ok\n").expect("write");
        assert_eq!(buf.len(), 2 * LEN_SIZE + 10 + 4);
        assert_eq!(&buf[..LEN_SIZE], &10usize.to_ne_bytes());
        assert_eq!(buf[LEN_SIZE + 9], 0);
        let mut r = io::Cursor::new(buf);
        assert_eq!(
            read_frame_blocking(&mut r, MAX_CMD_LEN).expect("1"),
            "show maps"
        );
        assert_eq!(read_frame_blocking(&mut r, MAX_CMD_LEN).expect("2"), "ok\n");
        assert!(matches!(
            read_frame_blocking(&mut r, MAX_CMD_LEN),
            Err(FrameError::Closed)
        ));
    }

    #[test]
    fn bad_lengths() {
        let mut r = io::Cursor::new(0usize.to_ne_bytes().to_vec());
        assert!(matches!(
            read_frame_blocking(&mut r, MAX_CMD_LEN),
            Err(FrameError::BadLength { len: 0, .. })
        ));
        let mut r = io::Cursor::new(513usize.to_ne_bytes().to_vec());
        assert!(matches!(
            read_frame_blocking(&mut r, MAX_CMD_LEN),
            Err(FrameError::BadLength { len: 513, .. })
        ));
        let mut data = 5usize.to_ne_bytes().to_vec();
        data.extend_from_slice(b"ab");
        let mut r = io::Cursor::new(data);
        assert!(matches!(
            read_frame_blocking(&mut r, MAX_CMD_LEN),
            Err(FrameError::Truncated)
        ));
        let mut r = io::Cursor::new(vec![1u8, 2]);
        assert!(matches!(
            read_frame_blocking(&mut r, MAX_CMD_LEN),
            Err(FrameError::Truncated)
        ));
    }

    #[test]
    fn text_stops_at_nul_and_survives_bad_utf8() {
        assert_eq!(body_text(b"show\0junk"), "show");
        assert_eq!(body_text(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(body_text(b"no nul"), "no nul");
    }

    #[tokio::test]
    async fn roundtrip_async() {
        let (mut a, mut b) = tokio::io::duplex(64);
        write_frame(&mut a, "list paths").await.expect("write");
        assert_eq!(
            read_frame(&mut b, MAX_CMD_LEN).await.expect("read"),
            "list paths"
        );
        drop(a);
        assert!(matches!(
            read_frame(&mut b, MAX_CMD_LEN).await,
            Err(FrameError::Closed)
        ));
    }
}
