// The pending-steps file `<db>.grace-end.<scope>` (daemon/store/FORMAT.md):
// what nfsd did on the stock kernel's cld pipe that the database could not
// record yet, one step a line ("start", "end <instance>", "end").
//
// The daemon rewrites it whenever a step is added and removes it once the
// steps are committed (daemon/tracker/tracker.h, pending steps); helper-ctl
// export-nfsdcld reads it so that it allows no more than the daemon's next
// start would. A file that does not parse decides nothing: both refuse to go
// on (fail closed), since the database alone cannot tell what nfsd did.
#ifndef DAEMON_STORE_PENDING_STEPS_H_
#define DAEMON_STORE_PENDING_STEPS_H_

#include <string>
#include <vector>

#include "daemon/recovery/engine.h"
#include "daemon/util/status.h"

namespace nfsdh::store {

// "<db>.grace-end.<scope>".
std::string PendingStepsPath(const std::string& db, const std::string& scope);

// The file's text for `steps` (empty for none: the file is then removed).
std::string FormatPendingSteps(const std::vector<recovery::PendingStep>& steps);

// Parses the file's text; false if any line is not a step (an empty text
// is not one either).
bool ParsePendingSteps(const std::string& text,
                       std::vector<recovery::PendingStep>* steps);

// Reads `path`: OK with no steps if it does not exist; kInvalid, naming the
// file, if it does not parse; an errno-coded status if it cannot be read.
Status ReadPendingSteps(const std::string& path,
                        std::vector<recovery::PendingStep>* steps);

}  // namespace nfsdh::store

#endif  // DAEMON_STORE_PENDING_STEPS_H_
