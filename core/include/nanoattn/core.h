// Everything in core: tensors, the tape, threading, BLAS, random numbers, errors.
#pragma once
#include "nanoattn/arena.h"
#include "nanoattn/blas.h"
#include "nanoattn/error.h"
#include "nanoattn/parallel.h"
#include "nanoattn/profile.h"
#include "nanoattn/rng.h"
#include "nanoattn/shape.h"
#include "nanoattn/tape.h"
#include "nanoattn/tensor.h"
