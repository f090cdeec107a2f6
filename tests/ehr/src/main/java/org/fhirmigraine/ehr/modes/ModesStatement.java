package org.fhirmigraine.ehr.modes;

import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.rest.api.Constants;
import ca.uhn.fhir.rest.api.RestOperationTypeEnum;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import org.hl7.fhir.instance.model.api.IBaseConformance;
import org.hl7.fhir.r4.model.CapabilityStatement;

import java.util.List;
import java.util.Set;

/**
 * The CapabilityStatement follows the modes at once: HAPI keeps a generated
 * statement for a minute (and then refreshes it in the background), so every
 * {@code /metadata} request is marked {@code Cache-Control: no-cache}, which
 * makes HAPI generate it afresh (and run the modes' hooks) each time. The
 * modes on are named in {@code implementation.description}, also those that
 * nothing else in a statement can express.
 */
@Interceptor
public final class ModesStatement {

	private final EhrModes myModes;

	public ModesStatement(EhrModes theModes) {
		myModes = theModes;
	}

	@Hook(Pointcut.SERVER_INCOMING_REQUEST_POST_PROCESSED)
	public void noCache(RequestDetails theRequest) {
		if (theRequest.getRestOperationType() == RestOperationTypeEnum.METADATA) {
			theRequest.setHeaders(Constants.HEADER_CACHE_CONTROL, List.of(Constants.CACHE_CONTROL_NO_CACHE));
		}
	}

	@Hook(Pointcut.SERVER_CAPABILITY_STATEMENT_GENERATED)
	public void describe(IBaseConformance theStatement, RequestDetails theRequest) {
		Set<Mode> modes = myModes.active();
		if (modes.isEmpty() || EhrModes.bypassed(theRequest)) {
			return;
		}
		CapabilityStatement statement = (CapabilityStatement) theStatement;
		String text = "test EHR modes: " + myModes.describe();
		if (modes.contains(Mode.THROTTLE)) {
			text += " (throttle: every " + myModes.throttleEvery() + "th request answers 429)";
		}
		String description = statement.getImplementation().getDescription();
		statement.getImplementation().setDescription(
				description == null || description.isBlank() ? text : description + "; " + text);
	}
}
