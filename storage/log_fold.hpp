// The state of every delivery as the log records alone tell it. The stored
// state is written in the same batch as each record; folding the log and
// comparing is how tests (and operators) check that the two agree.
#pragma once

#include "common/result.hpp"
#include "storage/store.hpp"

#include <map>
#include <string>

namespace tocsin::storage {

struct folded_delivery {
  delivery_state state = delivery_state::pending;
  int attempts = 0; ///< highest attempt number started
  std::string reason;
};

/// Folds every log record into the per-delivery state it describes.
result<std::map<std::string, folded_delivery>> fold_log(store& log);

} // namespace tocsin::storage
