// TODO(helper): implement.
#include "nanoattn/ops.h"
#include "op_util.h"
