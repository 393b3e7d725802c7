// Everything in core: tensors, the tape, threading, BLAS, random numbers, errors, stopping,
// memory checks.
#pragma once
#include "nanoattn/arena.h"
#include "nanoattn/blas.h"
#include "nanoattn/error.h"
#include "nanoattn/memory.h"
#include "nanoattn/parallel.h"
#include "nanoattn/profile.h"
#include "nanoattn/rng.h"
#include "nanoattn/shape.h"
#include "nanoattn/stop.h"
#include "nanoattn/tape.h"
#include "nanoattn/tensor.h"
