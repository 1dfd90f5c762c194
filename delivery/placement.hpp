// Which live node should drive what, as every node computes it alike from
// the same view (the names of the leases and the live nodes): rendezvous
// hashing with bounded load. Each name ranks the nodes by a hash of (node,
// name) and goes to the first one in its ranking that has fewer than
// ceil(names / nodes) names: the load is even (no node has two more than
// another), and a node that joins or leaves moves few names — those it
// takes or had, and a few pushed along by the bound.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace tocsin::delivery {

/// name -> node, for every name; empty when there are no nodes. Neither
/// list needs to be sorted or free of repeats.
std::map<std::string, std::string> place(std::vector<std::string> names,
                                         std::vector<std::string> nodes);

} // namespace tocsin::delivery
