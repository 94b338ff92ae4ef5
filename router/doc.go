// Package router owns the two topic indexes of the broker: the subscription
// index (Router), which answers "who gets a message published to this
// topic", and the retained-message index (Retained), which answers "which
// retained messages does this new subscription receive". It implements the
// matching rules of MQTT 5.0 section 4.7 ('+', '#', the '$' rule, case
// sensitivity) and shared subscriptions "$share/{group}/{filter}" (4.8.2). It
// knows nothing about connections, sessions or persistence: a subscriber is
// an opaque comparable key, a retained message an opaque value.
//
// # Subscription index
//
// Filters live in tries, one per shard. The shard of a filter is chosen by a
// hash of its first level; filters whose first level is '+' or '#' live in
// one extra wildcard shard, which every Match also consults (except for
// topics starting with '$', which no such filter matches, MQTT-4.7.2-1). A
// literal first level of a filter must equal the topic's first level for the
// filter to match, so a topic's matches are in exactly its own shard and the
// wildcard shard. Each shard has its own sync.RWMutex: a subscribe or
// unsubscribe write-locks one shard and never blocks matching in another
// (DESIGN.md invariant 6).
//
// Match results are cached per topic in the topic's shard. An entry records
// the generation numbers of the two shards it was computed from; every change
// that alters what Match returns bumps its shard's generation, so an entry
// from before the change is recomputed on its next use instead of being
// invalidated eagerly. A cache hit takes one read lock and allocates nothing.
//
// Lock order: a shard's mu before its cache's mu is never needed; the cache
// lock is only taken with no shard lock held, and shard locks are never
// nested.
//
// # Retained index
//
// Retained messages live in a topic trie, sharded the same way, so a narrow
// filter such as "sensors/+/temp" visits only the matching branches instead
// of every retained topic.
package router
