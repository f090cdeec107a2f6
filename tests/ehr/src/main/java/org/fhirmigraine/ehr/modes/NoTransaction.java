package org.fhirmigraine.ehr.modes;

import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.rest.api.RestOperationTypeEnum;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import ca.uhn.fhir.rest.server.exceptions.MethodNotAllowedException;
import org.hl7.fhir.instance.model.api.IBaseConformance;
import org.hl7.fhir.r4.model.CapabilityStatement.CapabilityStatementRestComponent;
import org.hl7.fhir.r4.model.CapabilityStatement.SystemRestfulInteraction;

/**
 * {@code no-transaction}: a Bundle of type transaction or batch posted to the
 * base answers 405 with an OperationOutcome, before it is read; the statement
 * lists neither {@code transaction} nor {@code batch}.
 */
@Interceptor
public final class NoTransaction extends ModeInterceptor {

	public NoTransaction(EhrModes theModes) {
		super(theModes, Mode.NO_TRANSACTION);
	}

	@Hook(Pointcut.SERVER_INCOMING_REQUEST_POST_PROCESSED)
	public void refuse(RequestDetails theRequest) {
		RestOperationTypeEnum operation = theRequest.getRestOperationType();
		if ((operation == RestOperationTypeEnum.TRANSACTION || operation == RestOperationTypeEnum.BATCH)
				&& on(theRequest)) {
			throw new MethodNotAllowedException(prefix()
					+ "this server accepts no transaction or batch Bundles; send one request per resource");
		}
	}

	@Hook(Pointcut.SERVER_CAPABILITY_STATEMENT_GENERATED)
	public void statement(IBaseConformance theStatement, RequestDetails theRequest) {
		if (!on(theRequest)) {
			return;
		}
		for (CapabilityStatementRestComponent rest : restParts(theStatement)) {
			rest.getInteraction().removeIf(i -> i.getCode() == SystemRestfulInteraction.TRANSACTION
					|| i.getCode() == SystemRestfulInteraction.BATCH);
		}
	}
}
