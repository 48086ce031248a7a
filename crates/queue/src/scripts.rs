//! The Lua scripts, one per transition (`lua/*.lua`), each prefixed with `lua/lib.lua`.
//!
//! Each starts with the `#!lua` shebang (Redis 7.0 or later): with it, Redis refuses any key
//! access outside the slot of the script's keys, on a cluster and also between slots of one
//! node, so a script that strayed from its partition fails at once instead of working only
//! while the slots happen to share a node.
//!
//! `redis::Script` sends `EVALSHA` and falls back to `SCRIPT LOAD` when the server does not
//! know the script (after a restart or a failover).

use std::sync::LazyLock;

use redis::Script;

const LIB: &str = include_str!("../lua/lib.lua");

/// Script flags line: none, so the defaults of a flagged script apply (single-slot key
/// access, writes allowed, refused on a replica and under `maxmemory` OOM).
pub(crate) const SHEBANG: &str = "#!lua\n";

fn with_lib(body: &str) -> Script {
    Script::new(&format!("{SHEBANG}{LIB}\n{body}"))
}

/// Every script, loaded once per process.
pub(crate) struct Scripts {
    pub enqueue: Script,
    pub claim: Script,
    pub renew: Script,
    pub mark_dialing: Script,
    pub ack: Script,
    pub defer: Script,
    pub retry: Script,
    pub dead: Script,
    pub cancel: Script,
    pub cancel_customer: Script,
    pub resolve: Script,
    pub redrive: Script,
    pub stats: Script,
    pub list: Script,
    pub members: Script,
    pub show: Script,
}

pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    enqueue: with_lib(include_str!("../lua/enqueue.lua")),
    claim: with_lib(include_str!("../lua/claim.lua")),
    renew: with_lib(include_str!("../lua/renew.lua")),
    mark_dialing: with_lib(include_str!("../lua/mark_dialing.lua")),
    ack: with_lib(include_str!("../lua/ack.lua")),
    defer: with_lib(include_str!("../lua/defer.lua")),
    retry: with_lib(include_str!("../lua/retry.lua")),
    dead: with_lib(include_str!("../lua/dead.lua")),
    cancel: with_lib(include_str!("../lua/cancel.lua")),
    cancel_customer: with_lib(include_str!("../lua/cancel_customer.lua")),
    resolve: with_lib(include_str!("../lua/resolve.lua")),
    redrive: with_lib(include_str!("../lua/redrive.lua")),
    stats: with_lib(include_str!("../lua/stats.lua")),
    list: with_lib(include_str!("../lua/list.lua")),
    members: with_lib(include_str!("../lua/members.lua")),
    show: with_lib(include_str!("../lua/show.lua")),
});
