/* sms — the SMS provider interface every service sends texts through
 * (codes from auth, review results from enterprise, …). The local provider,
 * the default, appends one line per message to <dir>/<phone>.log (what the
 * tests and `make run` users read); a real SMS gateway is another provider
 * behind the same call, chosen by configuration. */
#ifndef CAPLAT_SMS_H
#define CAPLAT_SMS_H

/* Chooses the provider: "local:<dir>" (the default is "local:var/sms"). */
int sms_provider_init(const char *spec);
/* Sends text to phone (11 digits). Never logs the text. Returns 0, or -1
 * when the provider failed (logged). */
int sms_provider_send(const char *phone, const char *text);

#endif
