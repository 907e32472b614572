// Package ui is raftkv's web dashboard, served by every member at /ui:
// plain HTML, CSS and JavaScript embedded in the binary (no build step),
// and GET /ui/api/cluster, the JSON the page polls every second.
//
// # What it owns
//
// The embedded page and the aggregation behind it. A browser cannot ask
// other members itself (they are other origins), so the member serving the
// page asks them: GET /ui/api/cluster reads this member's own /status for
// the member list, then every member's /status and /metrics at once, each
// within Config.MemberTimeout. A member that does not answer is shown as
// down with the reason, never as an error of the whole view. From those it
// builds Cluster: each member's role, term, commit and applied index, apply
// lag (commit - applied), the leader's match index and match lag for it,
// its counters (writes committed for its clients, reads served, leader
// changes seen) and their rates, computed from successive samples; the
// leader and the last change of leader this dashboard observed. On a shard
// group member or a config group member it passes on the /status sections
// "shard" and "config"; on a config group member it also reads the latest
// config (GET /config?level=stale) and the /status of every shard group
// member the config lists, for the bucket map and the migrations in
// progress (at most maxGroupMembers of them, each within MemberTimeout,
// after the first round: a view takes at most twice MemberTimeout).
//
// # What it must not do
//
// It is read-only and shows nothing that /status, /metrics and /config do
// not already show to anyone who can reach the member. It imports no other
// raftkv package: it reads members over HTTP, as an operator would, so it
// works across versions and with whatever serves those endpoints. Page
// scripts set every value as text, never as markup; responses forbid
// framing and scripts from elsewhere (Content-Security-Policy).
//
// # State and goroutines
//
// The handler keeps, under one mutex, each member's recent counter samples
// (at most maxSamples, none older than rateWindow, members not sampled for
// forgetAfter dropped) and the last leader and term seen. An aggregation
// starts a goroutine per member and per request, all ended by the
// aggregation's deadline before it returns; nothing runs between requests.
//
// # Invariants
//
//  1. Every request to a member has a deadline (MemberTimeout) and a size
//     limit; a slow or dead member delays the view by at most that.
//  2. A rate is reported only from two samples at least minRateSpan apart
//     whose counters did not go down (a member restart starts anew);
//     otherwise it is null, never a made-up zero.
//  3. The page and its assets are served from the binary: the dashboard
//     needs no network access beyond the members.
package ui
