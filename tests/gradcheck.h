// The tests' name for the gradient checker: it lives in the installed testing library
// (plugins/include/nanoattn/gradcheck.h, plugins/testing/gradcheck.cpp), which plugin authors use too.
#pragma once
#include "nanoattn/testing.h"
