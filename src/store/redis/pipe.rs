//! The hot path's own connection to one Redis server ([`Pipe`]): the two commands every
//! webhook event sends (an `MGET` before delivery, a `PSETEX` once the CRM accepted it)
//! are encoded straight into one buffer, and one small driver task on the caller's
//! runtime writes whatever has gathered in a single write and hands the replies, read
//! in order, to the commands waiting on them.
//!
//! redis-rs's multiplexer does the same in general form: a bounded channel, a oneshot
//! and a timer for each command, a boxed future, a combinator parser. Under load that
//! was most of what the Redis store cost beyond the memory store (benches/load/README.md,
//! "Profile"); here a command costs a lock, its bytes, and its caller's wake-up.
//!
//! Only what is simple is taken: plain TCP speaking RESP2, with `AUTH` and `SELECT`
//! from `store.redis_url`. Anything else (TLS, a Unix socket, RESP3, a Cluster) keeps
//! redis-rs ([`PipeTarget::of`] says which). The deadline is the store's: when commands
//! have waited `store.timeout_ms` without a reply, the connection is declared dead;
//! every command on a dead connection (waiting, or sent later) fails with
//! [`StoreError::Unavailable`], and the store makes a new one on next use.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::store::StoreError;

/// Where a pipe connects, when the target allows one.
pub struct PipeTarget {
    host: String,
    port: u16,
    username: Option<SecretString>,
    password: Option<SecretString>,
    db: i64,
}

impl PipeTarget {
    /// The pipe's target for a client, or `None` where the client needs more than a
    /// pipe does (TLS, a Unix socket, RESP3).
    pub fn of(client: &redis::Client) -> Option<Self> {
        let info = client.get_connection_info();
        let redis::ConnectionAddr::Tcp(host, port) = info.addr() else {
            return None;
        };
        let settings = info.redis_settings();
        if settings.protocol() != redis::ProtocolVersion::RESP2 {
            return None;
        }
        Some(Self {
            host: host.clone(),
            port: *port,
            username: settings.username().map(SecretString::from),
            password: settings.password().map(SecretString::from),
            db: settings.db(),
        })
    }
}

/// One reply, as RESP2 gives it.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK` and the like.
    Status(String),
    /// `-ERR …`: the server's message (it names no value).
    Error(String),
    Int(i64),
    /// A bulk string, `None` for nil.
    Bulk(Option<Vec<u8>>),
    /// An array, `None` for a nil array.
    Array(Option<Vec<Reply>>),
}

/// A handle on one connection, cheap to clone; commands from any clone go out in the
/// order they were sent and each gets its own reply. The connection closes when the
/// last clone is dropped.
#[derive(Clone)]
pub struct Pipe {
    handle: Arc<Handle>,
}

/// What every clone of a [`Pipe`] shares; dropping it closes the connection.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut st = lock(&self.shared);
        if st.dead.is_none() {
            st.dead = Some("the connection was closed".to_owned());
        }
        if let Some(w) = st.driver.take() {
            w.wake();
        }
    }
}

struct Shared {
    state: Mutex<State>,
}

/// A command's place: its reply once read, and who waits for it.
#[derive(Default)]
struct Slot {
    reply: Option<Result<Reply, String>>,
    waker: Option<Waker>,
    /// Its reply came (or its connection died): the driver is done with it.
    answered: bool,
    /// Its command's caller is gone (cancelled): the reply is read and dropped.
    abandoned: bool,
    /// Sent by [`Pipe::send`]: nobody waits for the reply, which is read and dropped,
    /// and a failure is logged as this.
    detached: Option<&'static str>,
}

struct State {
    /// Commands encoded and not yet handed to the driver.
    out: Vec<u8>,
    /// The slot of every command whose reply is still to come, in the order sent.
    waiting: VecDeque<usize>,
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// When the oldest wait began: a command sent to an idle connection, or the last
    /// reply read while others wait.
    since: Instant,
    driver: Option<Waker>,
    /// Why the connection is dead, once it is.
    dead: Option<String>,
    /// Bytes ever queued in `out`, and ever written by the driver: a command queued up
    /// to `queued` has been written once `written` reaches that.
    queued: u64,
    written: u64,
    /// [`Pipe::send`]s waiting for their bytes to be written: (end, waker).
    flush_waiters: Vec<(u64, Waker)>,
}

impl State {
    fn fail(&mut self, reason: &str) {
        if self.dead.is_none() {
            self.dead = Some(reason.to_owned());
        }
        self.out.clear();
        while let Some(i) = self.waiting.pop_front() {
            self.settle(i, Err(reason.to_owned()));
        }
        for (_, w) in self.flush_waiters.drain(..) {
            w.wake();
        }
    }

    fn settle(&mut self, i: usize, reply: Result<Reply, String>) {
        let slot = &mut self.slots[i];
        if slot.abandoned || slot.detached.is_some() {
            if let Some(what) = slot.detached {
                let failure = match &reply {
                    Ok(Reply::Error(e)) => Some(e.as_str()),
                    Err(e) => Some(e.as_str()),
                    Ok(_) => None,
                };
                if let Some(error) = failure {
                    tracing::warn!(error, stage = "store", "{what}");
                }
            }
            *slot = Slot::default();
            self.free.push(i);
            return;
        }
        slot.reply = Some(reply);
        slot.answered = true;
        if let Some(w) = slot.waker.take() {
            w.wake();
        }
    }
}

/// The state, whatever a panic elsewhere left in it (every change to it is whole).
fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared
        .state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Pipe {
    /// Connects, spawns the driver on the current runtime and authenticates.
    pub async fn connect(target: &PipeTarget, timeout: Duration) -> Result<Self, StoreError> {
        let addr = (target.host.as_str(), target.port);
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| StoreError::Unavailable("connecting timed out".into()))?
            .map_err(|e| StoreError::Unavailable(format!("connecting: {e}")))?;
        stream
            .set_nodelay(true)
            .map_err(|e| StoreError::Unavailable(format!("connecting: {e}")))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                out: Vec::with_capacity(4096),
                waiting: VecDeque::with_capacity(64),
                slots: Vec::with_capacity(64),
                free: Vec::with_capacity(64),
                since: Instant::now(),
                driver: None,
                dead: None,
                queued: 0,
                written: 0,
                flush_waiters: Vec::new(),
            }),
        });
        tokio::spawn(Driver::new(stream, shared.clone(), timeout));
        // From here on, an error drops the pipe, which closes the connection.
        let pipe = Pipe {
            handle: Arc::new(Handle { shared }),
        };
        if let Some(password) = &target.password {
            let password = password.expose_secret().as_bytes();
            let reply = match &target.username {
                Some(user) => {
                    let user = user.expose_secret().as_bytes();
                    pipe.call(&[b"AUTH", user, password]).await?
                }
                None => pipe.call(&[b"AUTH", password]).await?,
            };
            reply.expect_ok("AUTH")?;
        }
        if target.db != 0 {
            let db = itoa::Buffer::new().format(target.db).to_owned();
            pipe.call(&[b"SELECT", db.as_bytes()])
                .await?
                .expect_ok("SELECT")?;
        }
        Ok(pipe)
    }

    /// Whether the connection has died (its handles should be replaced).
    pub fn is_dead(&self) -> bool {
        self.lock().dead.is_some()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.handle.shared)
    }

    /// Sends one command and waits for its reply. A server error comes back as
    /// [`Reply::Error`]; a dead connection as [`StoreError::Unavailable`].
    pub async fn call(&self, args: &[&[u8]]) -> Result<Reply, StoreError> {
        let slot = {
            let mut st = self.lock();
            let (i, _) = enqueue(&mut st, args, None)?;
            SlotGuard { pipe: self, i }
        };
        poll_fn(|cx| {
            let mut st = self.lock();
            let s = &mut st.slots[slot.i];
            match s.reply.take() {
                Some(r) => Poll::Ready(r),
                None => {
                    match &s.waker {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        _ => s.waker = Some(cx.waker().clone()),
                    }
                    Poll::Pending
                }
            }
        })
        .await
        .map_err(StoreError::Unavailable)
    }

    /// Sends commands without waiting for their replies: returns once their bytes are
    /// written to the connection (so they reach Redis ahead of anything this thread
    /// sends later). The replies are read and dropped; a failure is logged as `what`
    /// (it never names a key or value).
    pub async fn send(&self, commands: &[&[&[u8]]], what: &'static str) -> Result<(), StoreError> {
        let end = {
            let mut st = self.lock();
            let mut end = st.queued;
            for args in commands {
                end = enqueue(&mut st, args, Some(what))?.1;
            }
            end
        };
        poll_fn(|cx| {
            let mut st = self.lock();
            if st.written >= end {
                return Poll::Ready(Ok(()));
            }
            if let Some(why) = &st.dead {
                return Poll::Ready(Err(StoreError::Unavailable(why.clone())));
            }
            st.flush_waiters.push((end, cx.waker().clone()));
            Poll::Pending
        })
        .await
    }
}

/// Queues one command and gives it a slot: the slot, and where its bytes end.
fn enqueue(
    st: &mut State,
    args: &[&[u8]],
    detached: Option<&'static str>,
) -> Result<(usize, u64), StoreError> {
    if let Some(why) = &st.dead {
        return Err(StoreError::Unavailable(why.clone()));
    }
    let before = st.out.len();
    encode(&mut st.out, args);
    st.queued += (st.out.len() - before) as u64;
    let i = match st.free.pop() {
        Some(i) => i,
        None => {
            st.slots.push(Slot::default());
            st.slots.len() - 1
        }
    };
    st.slots[i].detached = detached;
    if st.waiting.is_empty() {
        st.since = Instant::now();
    }
    st.waiting.push_back(i);
    if let Some(w) = st.driver.take() {
        w.wake();
    }
    Ok((i, st.queued))
}

impl Reply {
    /// `Ok` for a status reply (`+OK`); otherwise [`Reply::unexpected`].
    pub fn expect_ok(self, cmd: &str) -> Result<(), StoreError> {
        match self {
            Reply::Status(_) => Ok(()),
            other => Err(other.unexpected(cmd)),
        }
    }

    /// The server's error, or a reply of the wrong shape, as the store's error (naming
    /// the command and the reply's kind, never a value).
    pub fn unexpected(&self, cmd: &str) -> StoreError {
        match self {
            Reply::Error(e) => StoreError::Unavailable(format!("{cmd}: {e}")),
            other => StoreError::Unavailable(format!("{cmd}: unexpected {} reply", other.kind())),
        }
    }

    /// The reply's kind, for messages (never its value).
    pub fn kind(&self) -> &'static str {
        match self {
            Reply::Status(_) => "status",
            Reply::Error(_) => "error",
            Reply::Int(_) => "integer",
            Reply::Bulk(_) => "bulk string",
            Reply::Array(_) => "array",
        }
    }
}

/// Gives a slot back once its command is answered or its caller gone.
struct SlotGuard<'a> {
    pipe: &'a Pipe,
    i: usize,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.pipe.lock();
        let s = &mut st.slots[self.i];
        if s.answered {
            // Answered (read or not): the slot is free again.
            *s = Slot::default();
            st.free.push(self.i);
        } else {
            // Still waiting: the driver frees it when its reply comes.
            s.abandoned = true;
            s.waker = None;
        }
    }
}

/// Encodes one command as a RESP array of bulk strings.
fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    let mut n = itoa::Buffer::new();
    out.push(b'*');
    out.extend_from_slice(n.format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(n.format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Why a reply could not be read.
#[derive(Debug, PartialEq)]
pub enum ParseError {
    /// More bytes are needed.
    Incomplete,
    /// Not RESP2.
    Invalid(&'static str),
}

/// Parses one reply from the front of `buf`: the reply and the bytes it took.
pub fn parse(buf: &[u8]) -> Result<(Reply, usize), ParseError> {
    let (line, rest_at) = line(buf)?;
    let Some((&kind, body)) = line.split_first() else {
        return Err(ParseError::Invalid("empty line"));
    };
    let text = || String::from_utf8_lossy(body).into_owned();
    match kind {
        b'+' => Ok((Reply::Status(text()), rest_at)),
        b'-' => Ok((Reply::Error(text()), rest_at)),
        b':' => Ok((Reply::Int(number(body)?), rest_at)),
        b'$' => {
            let len = number(body)?;
            if len < 0 {
                return Ok((Reply::Bulk(None), rest_at));
            }
            let end = usize::try_from(len)
                .ok()
                .and_then(|n| rest_at.checked_add(n))
                .filter(|end| *end <= isize::MAX as usize - 2)
                .ok_or(ParseError::Invalid("bulk string too long"))?;
            if buf.len() < end + 2 {
                return Err(ParseError::Incomplete);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(ParseError::Invalid("bulk string not ended by CRLF"));
            }
            Ok((Reply::Bulk(Some(buf[rest_at..end].to_vec())), end + 2))
        }
        b'*' => {
            let len = number(body)?;
            if len < 0 {
                return Ok((Reply::Array(None), rest_at));
            }
            let mut items = Vec::with_capacity((len as usize).min(64));
            let mut at = rest_at;
            for _ in 0..len {
                let (item, used) = parse(&buf[at..])?;
                items.push(item);
                at += used;
            }
            Ok((Reply::Array(Some(items)), at))
        }
        _ => Err(ParseError::Invalid("unknown reply type")),
    }
}

/// The first line of `buf` (without its CRLF) and where the rest begins.
fn line(buf: &[u8]) -> Result<(&[u8], usize), ParseError> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(i) => Ok((&buf[..i], i + 2)),
        None => Err(ParseError::Incomplete),
    }
}

fn number(digits: &[u8]) -> Result<i64, ParseError> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(ParseError::Invalid("not a number"))
}

/// The task that owns the socket: writes what the commands gathered, reads replies,
/// and keeps the deadline. It ends when the connection dies.
struct Driver {
    stream: TcpStream,
    shared: Arc<Shared>,
    timeout: Duration,
    /// Bytes taken from [`State::out`], written from `written` on.
    wbuf: Vec<u8>,
    written: usize,
    /// Bytes written since the connection opened (published as [`State::written`]).
    total_written: u64,
    /// Bytes read (up to `filled`) and not yet parsed (from `parsed` on).
    rbuf: Vec<u8>,
    parsed: usize,
    filled: usize,
    /// Armed at or before the oldest wait's deadline while commands wait.
    sleep: Pin<Box<Sleep>>,
    armed: bool,
    /// While set, new commands gather before they are written ([`Driver::poll`]).
    gather: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl Driver {
    fn new(stream: TcpStream, shared: Arc<Shared>, timeout: Duration) -> Self {
        Self {
            stream,
            shared,
            timeout,
            wbuf: Vec::with_capacity(4096),
            written: 0,
            total_written: 0,
            rbuf: vec![0; 16 * 1024],
            parsed: 0,
            filled: 0,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            armed: false,
            gather: None,
        }
    }

    fn die(&mut self, reason: &str) -> Poll<()> {
        lock(&self.shared).fail(reason);
        Poll::Ready(())
    }

    /// Writes what is buffered; `Ok(true)` when all of it went out.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Result<bool, String> {
        while self.written < self.wbuf.len() {
            match Pin::new(&mut self.stream).poll_write(cx, &self.wbuf[self.written..]) {
                Poll::Ready(Ok(0)) => return Err("the connection closed".into()),
                Poll::Ready(Ok(n)) => {
                    self.written += n;
                    self.total_written += n as u64;
                }
                Poll::Ready(Err(e)) => return Err(format!("writing: {e}")),
                Poll::Pending => return Ok(false),
            }
        }
        self.wbuf.clear();
        self.written = 0;
        Ok(true)
    }

    /// Reads what has arrived and settles the replies it completes.
    fn poll_read_in(&mut self, cx: &mut Context<'_>) -> Result<(), String> {
        loop {
            if self.parsed == self.filled {
                self.parsed = 0;
                self.filled = 0;
            }
            if self.rbuf.len() - self.filled < 1024 {
                // Keep only the unparsed tail, and grow if that is not room enough.
                self.rbuf.copy_within(self.parsed..self.filled, 0);
                self.filled -= self.parsed;
                self.parsed = 0;
                if self.rbuf.len() - self.filled < 1024 {
                    self.rbuf.resize(self.rbuf.len() * 2, 0);
                }
            }
            let mut rb = ReadBuf::new(&mut self.rbuf[self.filled..]);
            match Pin::new(&mut self.stream).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    if n == 0 {
                        return Err("the server closed the connection".into());
                    }
                    self.filled += n;
                    self.settle_replies()?;
                }
                Poll::Ready(Err(e)) => return Err(format!("reading: {e}")),
                Poll::Pending => return Ok(()),
            }
        }
    }

    fn settle_replies(&mut self) -> Result<(), String> {
        let mut st = lock(&self.shared);
        let mut any = false;
        loop {
            match parse(&self.rbuf[self.parsed..self.filled]) {
                Ok((reply, used)) => {
                    self.parsed += used;
                    let Some(i) = st.waiting.pop_front() else {
                        return Err("a reply nobody asked for".into());
                    };
                    st.settle(i, Ok(reply));
                    any = true;
                }
                Err(ParseError::Incomplete) => break,
                Err(ParseError::Invalid(why)) => return Err(format!("unreadable reply: {why}")),
            }
        }
        if any && !st.waiting.is_empty() {
            st.since = Instant::now();
        }
        Ok(())
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
            let gathering = {
                let mut st = lock(&this.shared);
                if st.dead.is_some() {
                    return Poll::Ready(());
                }
                // New commands wait for the runtime's next turn (one yield), so that
                // those the handlers of this turn and of the I/O it wakes send go out
                // in the same write: each write to Redis costs more than the bytes.
                let fresh = this.wbuf.is_empty() && !st.out.is_empty();
                if fresh && this.gather.is_none() {
                    this.gather = Some(Box::pin(tokio::task::yield_now()));
                }
                let gathering = match &mut this.gather {
                    Some(g) => g.as_mut().poll(cx).is_pending(),
                    None => false,
                };
                if gathering {
                    // Senders need not wake the driver: it writes after the yield.
                    st.driver = None;
                } else {
                    this.gather = None;
                    match &st.driver {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        _ => st.driver = Some(cx.waker().clone()),
                    }
                    if fresh {
                        std::mem::swap(&mut this.wbuf, &mut st.out);
                    }
                }
                gathering
            };
            let flushed = match this.poll_write_out(cx) {
                Ok(f) => f,
                Err(e) => return this.die(&e),
            };
            if let Err(e) = this.poll_read_in(cx) {
                return this.die(&e);
            }
            let (more_out, since, waiting) = {
                let mut st = lock(&this.shared);
                if st.written != this.total_written {
                    st.written = this.total_written;
                    let written = st.written;
                    st.flush_waiters.retain(|(end, w)| {
                        if *end <= written {
                            w.wake_by_ref();
                        }
                        *end > written
                    });
                }
                (!st.out.is_empty(), st.since, !st.waiting.is_empty())
            };
            if waiting {
                let deadline = since + this.timeout;
                if Instant::now() >= deadline {
                    return this.die("no reply within store.timeout_ms");
                }
                if !this.armed || this.sleep.deadline() > deadline {
                    this.sleep.as_mut().reset(deadline);
                    this.armed = true;
                }
                if this.sleep.as_mut().poll(cx).is_ready() {
                    // Fired before the (since moved) deadline: re-armed on the next turn.
                    this.armed = false;
                    continue;
                }
            }
            if flushed && more_out && !gathering {
                // Commands came in while writing: write them too before sleeping.
                continue;
            }
            return Poll::Pending;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The runtime shut down under the connection, or it died: nothing will answer.
        lock(&self.shared).fail("the connection's runtime has shut down");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_command_as_an_array_of_bulk_strings() {
        let mut out = Vec::new();
        encode(&mut out, &[b"PSETEX", b"k:1", b"86400000", b"1"]);
        assert_eq!(
            out,
            b"*4\r\n$6\r\nPSETEX\r\n$3\r\nk:1\r\n$8\r\n86400000\r\n$1\r\n1\r\n"
        );
    }

    #[test]
    fn parses_every_reply_kind_and_says_how_much_it_took() {
        let buf = b"*3\r\n$-1\r\n$2\r\nab\r\n:7\r\n+OK\r\n";
        let (r, used) = parse(buf).unwrap();
        assert_eq!(
            r,
            Reply::Array(Some(vec![
                Reply::Bulk(None),
                Reply::Bulk(Some(b"ab".to_vec())),
                Reply::Int(7)
            ]))
        );
        assert_eq!(
            parse(&buf[used..]).unwrap(),
            (Reply::Status("OK".into()), 5)
        );
        assert_eq!(
            parse(b"-ERR wrong\r\n").unwrap().0,
            Reply::Error("ERR wrong".into())
        );
        assert_eq!(parse(b"*-1\r\n").unwrap().0, Reply::Array(None));
    }

    #[test]
    fn a_reply_cut_anywhere_is_incomplete_never_wrong() {
        let buf = b"*2\r\n$5\r\nhello\r\n$-1\r\n";
        for cut in 0..buf.len() {
            assert_eq!(
                parse(&buf[..cut]),
                Err(ParseError::Incomplete),
                "cut at {cut}"
            );
        }
        assert_eq!(parse(buf).unwrap().1, buf.len());
    }

    #[test]
    fn what_is_not_resp2_is_refused() {
        assert!(matches!(parse(b"?x\r\n"), Err(ParseError::Invalid(_))));
        assert!(matches!(parse(b"$abc\r\n"), Err(ParseError::Invalid(_))));
        assert!(matches!(
            parse(b"$1\r\nabc\r\n"),
            Err(ParseError::Invalid(_))
        ));
    }

    #[test]
    fn only_plain_tcp_with_resp2_gets_a_pipe() {
        let of = |url: &str| PipeTarget::of(&redis::Client::open(url).unwrap());
        let t = of("redis://app:s3cret@127.0.0.1:6390/3").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.db), ("127.0.0.1", 6390, 3));
        assert_eq!(t.username.unwrap().expose_secret(), "app");
        assert_eq!(t.password.unwrap().expose_secret(), "s3cret");
        assert!(of("redis://127.0.0.1:6379/?protocol=resp3").is_none());
        assert!(of("rediss://127.0.0.1:6379").is_none());
        assert!(of("redis+unix:///tmp/redis.sock").is_none());
    }
}
