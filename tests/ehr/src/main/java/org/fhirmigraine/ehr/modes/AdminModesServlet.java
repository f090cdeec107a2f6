package org.fhirmigraine.ehr.modes;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code /admin/modes}: {@code GET} answers
 * {@code {"modes": [...], "throttle_every": N}}; {@code PUT} with the same
 * JSON switches to exactly those modes ({@code throttle_every} may be left
 * out to keep it) and answers the new state. An unknown mode or a bad body
 * answers 400 with {@code {"error": "..."}}. Loopback test fixture: no
 * authentication.
 */
public final class AdminModesServlet extends HttpServlet {

	private static final long serialVersionUID = 1L;
	private static final ObjectMapper ourMapper = new ObjectMapper();

	private final transient EhrModes myModes;

	public AdminModesServlet(EhrModes theModes) {
		myModes = theModes;
	}

	@Override
	protected void doGet(HttpServletRequest theRequest, HttpServletResponse theResponse) throws IOException {
		if (!isModesPath(theRequest, theResponse)) {
			return;
		}
		write(theResponse, 200, state());
	}

	@Override
	protected void doPut(HttpServletRequest theRequest, HttpServletResponse theResponse) throws IOException {
		if (!isModesPath(theRequest, theResponse)) {
			return;
		}
		JsonNode body;
		try {
			body = ourMapper.readTree(theRequest.getInputStream());
		} catch (JsonProcessingException e) {
			error(theResponse, 400, "the body is not JSON: " + e.getOriginalMessage());
			return;
		}
		if (body == null || !body.isObject() || !body.path("modes").isArray()) {
			error(theResponse, 400, "expected {\"modes\": [names...], \"throttle_every\": N}");
			return;
		}
		List<Mode> modes = new ArrayList<>();
		for (JsonNode name : body.get("modes")) {
			if (!name.isTextual()) {
				error(theResponse, 400, "mode names are strings, got " + name);
				return;
			}
			Mode mode = Mode.byName(name.asText());
			if (mode == null) {
				error(theResponse, 400, "unknown mode '" + name.asText() + "' (known: " + EhrModes.knownNames() + ")");
				return;
			}
			modes.add(mode);
		}
		Integer every = null;
		JsonNode throttle = body.get("throttle_every");
		if (throttle != null && !throttle.isNull()) {
			if (!throttle.canConvertToInt() || !throttle.isIntegralNumber() || throttle.asInt() < 1) {
				error(theResponse, 400, "throttle_every must be an integer of 1 or more, got " + throttle);
				return;
			}
			every = throttle.asInt();
		}
		myModes.set(modes, every);
		write(theResponse, 200, state());
	}

	private boolean isModesPath(HttpServletRequest theRequest, HttpServletResponse theResponse) throws IOException {
		String path = theRequest.getPathInfo();
		if ("/modes".equals(path)) {
			return true;
		}
		error(theResponse, 404, "no such admin resource: " + theRequest.getRequestURI() + " (try /admin/modes)");
		return false;
	}

	private ObjectNode state() {
		ObjectNode node = ourMapper.createObjectNode();
		ArrayNode names = node.putArray("modes");
		for (Mode mode : myModes.active()) {
			names.add(mode.modeName());
		}
		node.put("throttle_every", myModes.throttleEvery());
		return node;
	}

	private static void error(HttpServletResponse theResponse, int theStatus, String theMessage) throws IOException {
		ObjectNode node = ourMapper.createObjectNode();
		node.put("error", theMessage);
		write(theResponse, theStatus, node);
	}

	private static void write(HttpServletResponse theResponse, int theStatus, JsonNode theBody) throws IOException {
		theResponse.setStatus(theStatus);
		theResponse.setContentType("application/json");
		theResponse.setCharacterEncoding("UTF-8");
		ourMapper.writeValue(theResponse.getOutputStream(), theBody);
	}
}
