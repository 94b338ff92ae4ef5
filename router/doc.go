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
// Match results are cached per topic, in cache shards chosen by a hash of
// the whole topic (so that a deployment with one common first level does not
// crowd one shard's cache). An entry records the generation numbers of the
// two trie shards it was computed from; every change that alters what Match
// returns bumps its shard's generation, so an entry from before the change
// is recomputed on its next use instead of being invalidated eagerly. A cache
// hit takes one read lock, no trie lock, and allocates nothing. A change in
// the wildcard shard makes every cached entry of a topic not starting with
// '$' stale; a change in another shard only that shard's topics.
//
// Locks: each trie shard and each cache shard has its own; no goroutine
// holds two at once, so there is no lock order to keep.
//
// # Retained index
//
// Retained messages live in a topic trie, sharded the same way, so a narrow
// filter such as "sensors/+/temp" visits only the matching branches instead
// of every retained topic.
package router
