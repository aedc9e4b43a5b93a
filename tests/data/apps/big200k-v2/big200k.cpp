// flashroom test app: big200k, version 2: one small code change (the print rhythm and a
// counter), the 200 KB of const data unchanged: the release-to-release change of a real app
// for delta-OTA comparisons against version 1 (bench/bench_delta.py).
#include "application.h"

static constexpr size_t BLOB_SIZE = 200 * 1024;

struct Blob {
    uint8_t bytes[BLOB_SIZE];
};

static constexpr Blob make_blob() {
    Blob b{};
    uint32_t x = 0x12345678u;
    for (size_t i = 0; i < BLOB_SIZE; ++i) {
        x = x * 1664525u + 1013904223u;
        b.bytes[i] = static_cast<uint8_t>(x >> 24);
    }
    return b;
}

extern const Blob blob;
const Blob blob = make_blob();

void setup() {
    Serial.begin(9600);
}

static uint32_t prints = 0;

void loop() {
    // read the blob at a run-time index, so the linker keeps all of it
    Serial.println(blob.bytes[millis() % BLOB_SIZE] + (++prints & 1));
    delay(750);
}
