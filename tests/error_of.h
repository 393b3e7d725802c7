// The message of the na::Error that f throws, or "(no error)": for tests of error messages.
#pragma once
#include <functional>
#include <string>

#include "nanoattn/error.h"

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const na::Error& e) {
    return e.what();
  }
  return "(no error)";
}
