#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { addPaymentSync } from '../lib/app';

addPaymentSync(new App());
