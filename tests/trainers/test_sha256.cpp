#include <doctest/doctest.h>

#include "data/sha256.h"
#include "nanoattn/error.h"

using namespace na;

TEST_CASE("sha256: FIPS 180-4 test vectors") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256: the shared corpus matches its published checksum; a missing file is a clear error") {
  CHECK(sha256_file(NANOATTN_SHARED_DIR "/data/tinyshakespeare.txt") ==
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed");
  CHECK_THROWS_WITH_AS(sha256_file("/nonexistent/x.txt"), "/nonexistent/x.txt: cannot open the file to checksum it", Error);
}
