// flashroom test app: about 200 KB of const data, so the user part is larger than the stock
// 128 KB region and fits the extended 256 KB one (spec 10: "a test app with 200 KB of const
// data"). The bytes come from an LCG evaluated at compile time, so they do not compress away.
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

void loop() {
    // read the blob at a run-time index, so the linker keeps all of it
    Serial.println(blob.bytes[millis() % BLOB_SIZE]);
    delay(1000);
}
