//! What a response is: the shapes a request expects ([`Expect`], [`Kind`]) and what the
//! decoder makes of the bytes ([`Response`], [`Item`], [`Status`]).
//!
//! Server-reported errors (`ERROR`, `CLIENT_ERROR`, `SERVER_ERROR`) are ordinary responses
//! ([`Response::Failed`]): the stream stays in step.

use bytes::Bytes;

use crate::error::Error;

/// One value of a retrieval response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The key as the server sent it (with the client's prefix); empty in meta replies.
    pub key: Bytes,
    /// The client flags stored with the value.
    pub flags: u32,
    /// The CAS unique, for `gets` / `gats`.
    pub cas: Option<u64>,
    /// The value.
    pub data: Bytes,
    /// Lease state from a meta reply: [`WON`], [`BUSY`], [`STALE`] bits (0 for classic).
    pub lease: u8,
    /// `Some(size)` when the server announced a value larger than the decoder's limit: its
    /// bytes were skipped as they streamed past, and `data` is empty.
    pub too_large: Option<u64>,
}

/// A meta request's opaque token (`O<token>`), echoed in its reply: four hex digits, a
/// connection's requests numbered in order (wrapping), so that a reply that is not its
/// request's is seen.
pub type Opaque = u16;

/// `W`: this client won the right to recompute the value.
pub const WON: u8 = 1;
/// `Z`: another client already holds that right.
pub const BUSY: u8 = 2;
/// `X`: the value is stale (invalidated).
pub const STALE: u8 = 4;

/// A one-word status reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `STORED` / `HD` after `ms`.
    Stored,
    /// `NOT_STORED` / `NS`.
    NotStored,
    /// `EXISTS` / `EX`: the CAS token is stale.
    Exists,
    /// `NOT_FOUND` / `NF` / `EN`.
    NotFound,
    /// `DELETED` / `HD` after `md`.
    Deleted,
    /// `TOUCHED` / `HD` after `mg ... T`.
    Touched,
    /// `OK`.
    Ok,
}

/// A complete response.
#[derive(Debug, Clone)]
pub enum Response {
    /// Retrieval: the hits, in the order the server sent them (two or more).
    Values(Vec<Item>),
    /// Retrieval with at most one hit (every single-key read): no list to allocate.
    Value(Option<Item>),
    /// A multi-key retrieval's hits lined up with the keys asked, in their order (made by
    /// the connection from [`Response::Values`], once it has checked every hit's key).
    Found(Vec<Option<Item>>),
    /// A status word.
    Status(Status),
    /// `incr` / `decr` result.
    Number(u64),
    /// `stats`: name/value pairs in the server's order.
    Stats(Vec<(String, String)>),
    /// `version`.
    Version(String),
    /// `ERROR`, `CLIENT_ERROR ..`, `SERVER_ERROR ..`, or a value over the decoder's limit
    /// ([`Error::ValueTooLarge`]) that was skipped.
    Failed(Error),
    /// Several responses to one batched request (`set_many`, `delete_many`).
    Many(Vec<Response>),
    /// The end of a run of quiet (noreply) meta requests: the failures the server reported
    /// for them, if any (`SERVER_ERROR` and `CLIENT_ERROR` lines do not say which request
    /// they are for). Quiet meta requests report failures; successes are silent.
    Quiet(Vec<Error>),
}

/// The shape of the reply a request expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `VALUE ...` blocks then `END`.
    Values,
    /// STORED / NOT_STORED / EXISTS / NOT_FOUND.
    Store,
    /// DELETED / NOT_FOUND.
    Delete,
    /// TOUCHED / NOT_FOUND.
    Touch,
    /// a number / NOT_FOUND.
    Arith,
    /// `STAT` lines then `END`.
    Stats,
    /// `VERSION x`.
    Version,
    /// `OK`.
    Ok,
    /// `mg`: `VA <size> <flags>` + data, `HD <flags>` (a hit without a value), or `EN`.
    MetaGet,
    /// `mg <key> T<ttl>` used as touch: `HD` = touched, `EN` = not found.
    MetaTouch,
    /// `ms`: HD / NS / EX / NF.
    MetaStore,
    /// `md`: HD / NF.
    MetaDelete,
    /// `ma ... v`: `VA <size>` + the number, or NF.
    MetaArith,
    /// The `mn` after a run of quiet requests: any failure lines, then `MN`.
    Quiet,
}

impl Kind {
    /// A reply of the meta protocol, which echoes the request's opaque token (`O`).
    pub fn is_meta(self) -> bool {
        matches!(
            self,
            Kind::MetaGet | Kind::MetaTouch | Kind::MetaStore | Kind::MetaDelete | Kind::MetaArith
        )
    }
}

/// What the request at the head of the queue expects: `count` replies of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    /// The shape of each reply.
    pub kind: Kind,
    /// How many replies (more than one for a batch such as `set_many`).
    pub count: u32,
    /// Meta replies: the opaque token (`O<n>`) the first reply must echo; each next reply of
    /// the batch echoes the next number. For [`Kind::Quiet`], the token of the run's first
    /// request. `None`: not checked.
    pub opaque: Option<Opaque>,
    /// The most items the reply may hold: for [`Kind::Values`], the keys asked (a reply with
    /// more `VALUE`s cannot be this request's); for [`Kind::Quiet`], the requests of the run
    /// (each reports at most one line).
    pub items: u32,
}

impl Expect {
    /// One reply of `kind`, of at most one item, not checked for an opaque token.
    pub const fn one(kind: Kind) -> Self {
        Expect {
            kind,
            count: 1,
            opaque: None,
            items: 1,
        }
    }
}
