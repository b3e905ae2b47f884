// User: the one method that needs its Connection (see user.h).
#include "load-tests/driver/user.h"

#include "load-tests/driver/connection.h"

namespace oms::load {

bool User::online() const { return conn && conn->is_open(); }

}  // namespace oms::load
