/* sms_int — what sms.c asks of the remote provider (sms_alibaba.c). */
#ifndef CAPLAT_SMS_INT_H
#define CAPLAT_SMS_INT_H

#include "sms.h"

/* Reads the provider's settings from the environment for base url; -1
 * with the reason logged when one is missing or bad. */
int sms_alibaba_init(const char *url);
void sms_alibaba_start(struct event_base *base);
void sms_alibaba_deliver(const struct sms_message *m, sms_done_fn fn,
    void *arg);

#endif
