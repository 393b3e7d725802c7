// Errors that carry a message and the context they happened in.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace na {

// Every error nanoattn throws. what() is "context: message" so it reads well when printed alone.
class Error : public std::runtime_error {
 public:
  Error(std::string context, std::string message)
      : std::runtime_error(context.empty() ? message : context + ": " + message),
        context_(std::move(context)), message_(std::move(message)) {}
  const std::string& context() const { return context_; }
  const std::string& message() const { return message_; }

 private:
  std::string context_, message_;
};

// Builds a string from any streamable parts: cat("shape ", s, " has ", n, " dims").
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

}  // namespace na

// NA_CHECK(cond, context, parts...): throws na::Error(context, cat(parts...)) when cond is false.
#define NA_CHECK(cond, context, ...) \
  do {                               \
    if (!(cond)) throw ::na::Error((context), ::na::cat(__VA_ARGS__)); \
  } while (0)
