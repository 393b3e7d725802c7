// IEEE 754 binary16 ("float16", numpy's float16) <-> float32, for float16 prediction dumps. Our
// own conversion: HDF5's soft float conversion is slow, and doing it here keeps the rounding
// (to nearest, ties to even) explicit and tested.
#pragma once
#include <cstdint>
#include <cstring>

namespace na {

// Round to nearest even; |x| >= 65520 becomes +-inf, NaN stays NaN (quiet), tiny values become
// half subnormals or +-0.
inline uint16_t float_to_half(float value) {
  uint32_t x;
  std::memcpy(&x, &value, sizeof x);
  const uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7fffffffu;
  if (x >= 0x47800000u)                         // >= 65536, inf or NaN (65520..65536 round below)
    return static_cast<uint16_t>(sign | (x > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (x < 0x38800000u) {                        // below 2^-14: a half subnormal or zero
    // Adding 0.5 lines the half's last subnormal bit up with float's last mantissa bit, so the
    // FPU's own round-to-nearest-even does the rounding.
    float f;
    std::memcpy(&f, &x, sizeof f);
    f += 0.5f;
    uint32_t r;
    std::memcpy(&r, &f, sizeof r);
    return static_cast<uint16_t>(sign | (r - 0x3f000000u));
  }
  const uint32_t odd = (x >> 13) & 1u;          // ties to even
  x += 0xc8000fffu + odd;                        // rebias the exponent (-112 << 23) and round
  return static_cast<uint16_t>(sign | (x >> 13));
}

inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {                               // zero or subnormal: mant * 2^-24, exact in float
    float f = static_cast<float>(mant) * 5.9604644775390625e-8f;
    std::memcpy(&bits, &f, sizeof bits);
    bits |= sign;
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

}  // namespace na
