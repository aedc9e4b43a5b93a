// flashroom test app: the tiny app, version 2: one small code change (the blink rhythm and a
// counter), for delta-OTA comparisons against version 1.
#include "application.h"

static uint32_t blinks = 0;

void setup() {
    pinMode(D7, OUTPUT);
}

void loop() {
    digitalWrite(D7, HIGH);
    delay(250);
    digitalWrite(D7, LOW);
    delay(750);
    ++blinks;
}
