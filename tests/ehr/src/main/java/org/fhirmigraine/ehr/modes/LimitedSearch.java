package org.fhirmigraine.ehr.modes;

import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.rest.api.Constants;
import ca.uhn.fhir.rest.api.RestOperationTypeEnum;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import ca.uhn.fhir.rest.server.exceptions.InvalidRequestException;
import org.hl7.fhir.instance.model.api.IBaseConformance;
import org.hl7.fhir.r4.model.CapabilityStatement.CapabilityStatementRestComponent;
import org.hl7.fhir.r4.model.CapabilityStatement.CapabilityStatementRestResourceComponent;

import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/**
 * {@code limited-search}: Observation, MedicationRequest and RequestGroup
 * cannot be searched by {@code identifier} or {@code subject} (with any
 * modifier or chain); the patient is named with {@code patient}. Such a
 * search answers 400 with an OperationOutcome naming the parameter, and those
 * parameters are missing from the types' {@code searchParam} lists. A
 * {@code _count} above 200 is lowered to 200 (every search and page).
 */
@Interceptor
public final class LimitedSearch extends ModeInterceptor {

	public static final Set<String> LIMITED_TYPES = Set.of("Observation", "MedicationRequest", "RequestGroup");
	public static final Set<String> REFUSED_PARAMS = Set.of("identifier", "subject");
	public static final int MAX_COUNT = 200;

	public LimitedSearch(EhrModes theModes) {
		super(theModes, Mode.LIMITED_SEARCH);
	}

	@Hook(Pointcut.SERVER_INCOMING_REQUEST_POST_PROCESSED)
	public void check(RequestDetails theRequest) {
		RestOperationTypeEnum operation = theRequest.getRestOperationType();
		if (operation == null || !on(theRequest)) {
			return;
		}
		if (operation == RestOperationTypeEnum.SEARCH_TYPE && LIMITED_TYPES.contains(theRequest.getResourceName())) {
			for (String name : theRequest.getParameters().keySet()) {
				String base = name.split("[:.]", 2)[0];
				if (REFUSED_PARAMS.contains(base)) {
					String hint = base.equals("subject") ? " (use 'patient')" : "";
					throw new InvalidRequestException(prefix() + "search parameter '" + name + "' is not supported for "
							+ theRequest.getResourceName() + hint);
				}
			}
		}
		if (operation == RestOperationTypeEnum.SEARCH_TYPE
				|| operation == RestOperationTypeEnum.SEARCH_SYSTEM
				|| operation == RestOperationTypeEnum.GET_PAGE) {
			capCount(theRequest);
		}
	}

	private static void capCount(RequestDetails theRequest) {
		String[] counts = theRequest.getParameters().get(Constants.PARAM_COUNT);
		if (counts == null || counts.length == 0) {
			return;
		}
		int count;
		try {
			count = Integer.parseInt(counts[0].trim());
		} catch (NumberFormatException e) {
			return; // HAPI answers a malformed _count itself
		}
		if (count > MAX_COUNT) {
			Map<String, String[]> parameters = new HashMap<>(theRequest.getParameters());
			parameters.put(Constants.PARAM_COUNT, new String[] {Integer.toString(MAX_COUNT)});
			theRequest.setParameters(parameters);
		}
	}

	@Hook(Pointcut.SERVER_CAPABILITY_STATEMENT_GENERATED)
	public void statement(IBaseConformance theStatement, RequestDetails theRequest) {
		if (!on(theRequest)) {
			return;
		}
		for (CapabilityStatementRestComponent rest : restParts(theStatement)) {
			for (CapabilityStatementRestResourceComponent resource : rest.getResource()) {
				if (LIMITED_TYPES.contains(resource.getType())) {
					resource.getSearchParam().removeIf(p -> REFUSED_PARAMS.contains(p.getName()));
				}
			}
		}
	}
}
