package org.fhirmigraine.ehr.modes;

import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.rest.api.RestOperationTypeEnum;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import ca.uhn.fhir.rest.server.exceptions.BaseServerResponseException;

/**
 * {@code throttle}: every Nth request ({@code throttle_every}, default 5)
 * answers 429 with {@code Retry-After: 1} and an OperationOutcome, without
 * doing anything. {@code /metadata}, the admin endpoint and requests with
 * {@code X-Test-Admin: 1} are not counted. The count restarts whenever the
 * modes are set. Nothing in a CapabilityStatement can say this; the mode is
 * named in {@code implementation.description}.
 */
@Interceptor
public final class Throttle extends ModeInterceptor {

	/** 429 Too Many Requests. */
	static final class TooManyRequestsException extends BaseServerResponseException {
		private static final long serialVersionUID = 1L;

		TooManyRequestsException(String theMessage) {
			super(429, theMessage);
			addResponseHeader("Retry-After", "1");
		}
	}

	public Throttle(EhrModes theModes) {
		super(theModes, Mode.THROTTLE);
	}

	// Before every other mode's check, so each request is counted once and a refused one does nothing.
	@Hook(value = Pointcut.SERVER_INCOMING_REQUEST_POST_PROCESSED, order = -100)
	public void count(RequestDetails theRequest) {
		if (theRequest.getRestOperationType() == RestOperationTypeEnum.METADATA || !on(theRequest)) {
			return;
		}
		if (myModes.countForThrottle()) {
			throw new TooManyRequestsException(prefix() + "too many requests (every "
					+ myModes.throttleEvery() + "th is refused); retry after 1 s");
		}
	}
}
